"""Serve the fake AimHarder (devgyms.fake_aimharder) for `make run`, demos and benchmarks."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from devgyms.fake_aimharder import FakeAimHarder, FakeServer


class Command(BaseCommand):
    help = (
        "Serve a fake AimHarder with its own clock skew and one-way delay; seeded with a box "
        "(fake-box), a member (member@example.com / aimharder-demo) and a class every 15 "
        "minutes round the clock, bookable 2 hours ahead, unless --empty."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.AIMHARDER_FAKE_PORT)
        parser.add_argument("--skew-ms", type=float, default=settings.AIMHARDER_FAKE_SKEW_MS)
        parser.add_argument("--delay-ms", type=float, default=settings.AIMHARDER_FAKE_DELAY_MS)
        parser.add_argument("--empty", action="store_true", help="no demo box, member, classes")

    def handle(self, *args, host: str, port: int, **options) -> None:
        if not settings.AIMHARDER_FAKE_ENABLED:
            # Idle rather than exit: honcho stops every process when one ends.
            self.stdout.write("Fake AimHarder disabled (AIMHARDER_FAKE_ENABLED is off).")
            signal.pause()
            return
        fake = FakeAimHarder(options["skew_ms"] / 1000, options["delay_ms"] / 1000)
        if not options["empty"]:
            fake.seed_demo()
        server = FakeServer((host, port), fake)
        self.stdout.write(
            f"Fake AimHarder on {server.url} (skew {options['skew_ms']:+.0f} ms, one-way delay "
            f"{options['delay_ms']:.0f} ms)",
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
