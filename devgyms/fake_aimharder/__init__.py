"""A local fake of AimHarder's web API for the tests, the demo and `make run`.

It answers as docs/prebooking.md ("AimHarder") describes the real one: the JSON login with the
`amhrdrauth` cookie, `/{box}/api/bookings`, `/{box}/api/book` (HTTP 200 with `bookState`),
`/{box}/api/cancelBook` (with the late-cancellation warning), `{"logout": 1}` for a dead
session, and a `Date` header by its own clock. Everything is held in memory.

Two settings make it a gym across a network: `skew` (its clock minus ours, seconds) and `delay`
(one-way network delay, seconds: a request is handled `delay` after the kernel received it and
its answer leaves `delay` later). Each request's arrival time by its own clock is logged
(`requests`), taken from the kernel's receive timestamp of its first byte, so its thread
scheduling is not counted. `/_fake/...` endpoints let another process set it up and read the log.
"""

from devgyms.fake_aimharder.server import FakeHandler, FakeServer, serve
from devgyms.fake_aimharder.state import (
    FakeAccount,
    FakeAimHarder,
    FakeBox,
    FakeClass,
    Timetable,
)

__all__ = [
    "FakeAccount",
    "FakeAimHarder",
    "FakeBox",
    "FakeClass",
    "FakeHandler",
    "FakeServer",
    "Timetable",
    "serve",
]
