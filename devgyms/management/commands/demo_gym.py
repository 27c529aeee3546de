"""Run the bundled demo gym's booking API (make run starts it; see devgyms.demo_gym)."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from devgyms.demo_gym import make_server


class Command(BaseCommand):
    help = "Serve the demo gym booking API."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.PREBOOKING_DEMO_GYM_PORT)

    def handle(self, *args, host: str, port: int, **options) -> None:
        if not settings.PREBOOKING_DEMO_GYM_ENABLED:
            # Idle rather than exit: honcho stops every process when one ends.
            self.stdout.write("Demo gym disabled (PREBOOKING_DEMO_GYM_ENABLED is off).")
            signal.pause()
            return
        server = make_server(host, port)
        self.stdout.write(f"Demo gym listening on http://{host}:{server.server_address[1]}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
