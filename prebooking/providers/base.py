"""What every gym booking provider is: its interface, and the outcomes of a booking attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

BOOKED = "booked"
REJECTED = "rejected"
NOT_OPEN = "not_open"
RETRY = "retry"
WAITLISTED = "waitlisted"  # final: not booked, but in the gym's waiting list (AimHarder)


@dataclass(frozen=True)
class BookingResult:
    """What one booking attempt came back with."""

    outcome: str  # BOOKED, REJECTED, NOT_OPEN, RETRY or WAITLISTED
    status_code: int | None
    answer: dict = field(default_factory=dict)
    reason: str = ""
    # What the answer means in the provider's terms ("already_booked", "full", ...), and the
    # arrival targeting's figures for this attempt (offset, estimated arrival); both optional.
    kind: str = ""
    timing: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        data = {"status_code": self.status_code, "answer": self.answer, "reason": self.reason}
        if self.kind:
            data["kind"] = self.kind
        if self.timing:
            data["timing"] = self.timing
        return data


class PreparedRelease(Protocol):
    """Requests made ready before the instant: send() each in order, then receive() each."""

    def send(self, index: int) -> float: ...
    def receive(self, index: int) -> BookingResult: ...
    def close(self) -> None: ...


class Provider(Protocol):
    """A gym's booking API."""

    name: str

    def book(self, payload: dict, key: str) -> BookingResult: ...
    def prepare(self, requests: list[tuple[dict, str]]) -> PreparedRelease: ...
