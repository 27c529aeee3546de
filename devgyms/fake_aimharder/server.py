"""The fake AimHarder's HTTP side: routes, the Date header by its clock, the network delay."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from email.utils import formatdate
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from devgyms.demo_gym import SO_TIMESTAMPNS, first_byte_time
from devgyms.fake_aimharder.state import FakeAccount, FakeAimHarder

log = logging.getLogger(__name__)


class FakeHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, one thread per connection, delays by the fake's settings."""

    protocol_version = "HTTP/1.1"
    server_version = "nginx"

    @property
    def fake(self) -> FakeAimHarder:
        return self.server.fake

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.received = 0.0

    def handle_one_request(self) -> None:
        received = first_byte_time(self.connection)
        if received is None:
            self.close_connection = True
            return
        self.received = received + self.fake.delay  # when it "reaches" the gym (our clock)
        wait = self.received - time.time()
        if wait > 0:
            time.sleep(wait)
        super().handle_one_request()

    def date_time_string(self, timestamp=None) -> str:
        return formatdate(self.fake.now() if timestamp is None else timestamp, usegmt=True)

    def _answer(self, status: int, answer: dict | None, cookie: str = "") -> None:
        body = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)  # the Date header: the fake's clock, now
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if cookie:
            self.send_header("Set-Cookie", f"amhrdrauth={cookie}; Path=/; HttpOnly")
        if self.fake.delay:
            time.sleep(self.fake.delay)  # the way back
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _form(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)

    def _json_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _account(self) -> FakeAccount | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie["amhrdrauth"].value if "amhrdrauth" in cookie else ""
        return self.fake.member_of(token)

    def _route(self) -> tuple[str, str, dict]:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if segments[:1] == ["api"]:
            return "", "/" + "/".join(segments), parse_qs(parts.query)
        return segments[0], "/" + "/".join(segments[1:]), parse_qs(parts.query)

    def do_HEAD(self) -> None:
        self._answer(200, None)

    def do_GET(self) -> None:
        box, path, query = self._route()
        if box == "_fake" and path == "/log":
            since = int(query.get("since", ["0"])[0])
            self._answer(200, {"requests": self.fake.requests[since:]})
            return
        if self.fake.down:
            self._answer(503, {"error": "unavailable"})
            return
        account = self._account()
        if path == "/api/whoami":
            data = {"id": account.member_id, "name": account.name} if account else {}
            self._answer(200, {"data": data})
        elif path == "/api/bookings" and box in self.fake.boxes:
            if account is None:
                self._answer(200, {"logout": 1})
            else:
                self._answer(200, self.fake.bookings(account, box, query))
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        box, path, _query = self._route()
        if box == "_fake":
            self._control(path)
            return
        if self.fake.down:
            self._answer(503, {"error": "unavailable"})
            return
        if path == "/api/login" and not box:
            status, answer, cookie = self.fake.login(self._json_body())
            self._answer(status, answer, cookie)
            return
        form = self._form()
        account = self._account()
        arrived = self.received + self.fake.skew
        entry = {
            "path": self.path.split("?")[0],
            "member": account.email if account else "",
            "session_id": form.get("id", [""])[0],
            "arrived": arrived,
            "received_local": self.received,
        }
        if box not in self.fake.boxes or path not in ("/api/book", "/api/cancelBook"):
            entry["answer"] = "not found"
            self.fake.record(entry)
            self._answer(404, {"error": "not found"})
            return
        if account is None:
            entry["answer"] = "logout"
            self.fake.record(entry)
            self._answer(200, {"logout": 1})
            return
        if path == "/api/book":
            answer = self.fake.turnstile.run(
                self.received, lambda: self.fake.book(account, form, arrived)
            )
        else:
            answer = self.fake.cancel(account, form)
        entry["answer"] = answer.get("bookState", answer.get("cancelState"))
        self.fake.record(entry)
        self._answer(200, answer)

    def _control(self, path: str) -> None:
        if path == "/setup":
            try:
                self._answer(200, self.fake.load(self._json_body()))
            except (KeyError, TypeError, ValueError) as exc:
                self._answer(400, {"error": f"bad set-up: {exc!r}"})
        elif path == "/expire_sessions":
            self.fake.expire_sessions()
            self._answer(200, {"ok": True})
        else:
            self._answer(404, {"error": "not found"})

    def log_message(self, format: str, *args) -> None:
        log.debug("fake aimharder: " + format, *args)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, fake: FakeAimHarder) -> None:
        super().__init__(address, FakeHandler)
        self.fake = fake
        fake.server = self

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serve(
    fake: FakeAimHarder, host: str = "127.0.0.1", port: int = 0
) -> tuple[FakeServer, threading.Thread]:
    """Serve `fake` from a thread on (host, port); port 0 picks a free one."""
    server = FakeServer((host, port), fake)
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="fake-aimharder", daemon=True
    )
    thread.start()
    return server, thread
