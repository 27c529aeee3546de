"""A local fake of AimHarder's web API for the tests, the demo and `make run`.

It answers as shared/AIMHARDER.md describes the real one: the JSON login with the `amhrdrauth`
cookie, `/{box}/api/bookings`, `/{box}/api/book` (HTTP 200 with `bookState`),
`/{box}/api/cancelBook` (with the late-cancellation warning), `{"logout": 1}` for a dead
session, and a `Date` header by its own clock. Everything is held in memory.

Two settings make it a gym across a network: `skew` (its clock minus ours, seconds) and `delay`
(one-way network delay, seconds: a request is handled `delay` after the kernel received it and
its answer leaves `delay` later). Each request's arrival time by its own clock is logged
(`requests`), taken from the kernel's receive timestamp of its first byte, so its thread
scheduling is not counted. `/_fake/...` endpoints let another process set it up and read the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from email.utils import formatdate
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from prebooking.demo_gym import SO_TIMESTAMPNS, Turnstile, first_byte_time

log = logging.getLogger(__name__)
MADRID = ZoneInfo("Europe/Madrid")
TOO_EARLY = {
    "bookState": -12,
    "errorMssg": "No puedes reservar clases con tanta antelación",
    "errorMssgLang": "ERROR_ANTELACION_CLIENTE",
}
ALREADY = {
    "bookState": -12,
    "errorMssg": "No puedes reservar dos clases a la misma hora",
    "errorMssgLang": "NOPUEDESRESERVAMISMAHORA",
}


@dataclass
class FakeAccount:
    email: str
    password: str
    member_id: str
    name: str
    boxes: list[str]
    credits: int = 100
    failures: int = 0


@dataclass
class FakeBox:
    slug: str
    boid: str
    name: str


@dataclass
class FakeClass:
    session_id: str
    box: str
    day: str  # YYYYMMDD
    time: str  # "18:00 - 19:00"
    name: str
    opens_at: float  # by the fake's clock
    starts_at: float
    coach: str = "Coach"
    capacity: int = 10
    waitlist_capacity: int = 5
    late_cancel_seconds: float = 3600.0
    booked: dict[str, str] = field(default_factory=dict)  # member_id -> reservation id
    waiting: dict[str, str] = field(default_factory=dict)


class FakeAimHarder:
    """The fake's state, and the server answering for it."""

    LOCK_AFTER = 5  # failed logins before "demasiadas veces"

    def __init__(self, skew: float = 0.0, delay: float = 0.0) -> None:
        self.skew = skew
        self.delay = delay
        self.down = False  # answer 503 to everything (AimHarder unavailable)
        self.session_seconds: float | None = None  # sessions never expire by default
        self.accounts: dict[str, FakeAccount] = {}
        self.boxes: dict[str, FakeBox] = {}
        self.classes: dict[str, FakeClass] = {}
        self.sessions: dict[str, tuple[str, float]] = {}  # cookie -> (member_id, created)
        self.requests: list[dict] = []
        self.lock = threading.RLock()
        self.turnstile = Turnstile()
        self._ids = itertools.count(900001)
        self.server: ThreadingHTTPServer | None = None

    # -- set-up --------------------------------------------------------------------------
    def now(self) -> float:
        """The fake's clock (epoch seconds)."""
        return time.time() + self.skew

    def add_box(self, slug: str, boid: str = "", name: str = "") -> FakeBox:
        with self.lock:
            box = FakeBox(slug, boid or str(1000 + len(self.boxes)), name or slug.title())
            self.boxes[slug] = box
            return box

    def add_account(
        self, email: str, password: str, boxes: list[str], name: str = "", credits: int = 100
    ) -> FakeAccount:
        with self.lock:
            account = FakeAccount(
                email.lower(),
                password,
                str(50000 + len(self.accounts)),
                name or email,
                boxes,
                credits,
            )
            self.accounts[account.email] = account
            return account

    def add_class(
        self,
        box: str,
        starts_at: datetime,
        opens_at: datetime,
        name: str = "WOD",
        minutes: int = 60,
        **options,
    ) -> FakeClass:
        """A class at `starts_at` (aware), bookable from `opens_at` by the fake's clock."""
        local = starts_at.astimezone(MADRID)
        end = local + timedelta(minutes=minutes)
        with self.lock:
            gym_class = FakeClass(
                session_id=str(next(self._ids)),
                box=box,
                day=local.strftime("%Y%m%d"),
                time=f"{local:%H:%M} - {end:%H:%M}",
                name=name,
                opens_at=opens_at.timestamp(),
                starts_at=starts_at.timestamp(),
                **options,
            )
            self.classes[gym_class.session_id] = gym_class
            return gym_class

    def expire_sessions(self) -> None:
        """Every session ends now (the next call answers {"logout": 1})."""
        with self.lock:
            self.sessions.clear()

    def arrivals(self, path: str = "/api/book") -> list[dict]:
        with self.lock:
            return [entry for entry in self.requests if entry["path"].endswith(path)]

    def seed_demo(self, days: int = 8) -> None:
        """What `make run` shows: a box, one member, classes every 30 minutes 07:00-21:30
        (Madrid) for `days` days, each opening for booking 2 hours before it starts."""
        self.add_box("fake-box", "10122", "Fake CrossFit Box")
        self.add_account("member@example.com", "aimharder-demo", ["fake-box"], "Demo Member")
        today = datetime.now(MADRID).date()
        for offset in range(days):
            day = today + timedelta(days=offset)
            for slot in range(30):
                hour, half = divmod(slot, 2)
                starts = datetime(day.year, day.month, day.day, 7 + hour, 30 * half, tzinfo=MADRID)
                name = ["WOD", "Open Box", "Halterofilia", "Gimnásticos"][slot % 4]
                self.add_class(
                    "fake-box",
                    starts,
                    starts - timedelta(hours=2),
                    name,
                    minutes=60,
                    coach=["Lucía", "Marc", "Nerea"][slot % 3],
                    capacity=12,
                )

    def load(self, spec: dict) -> dict:
        """Set up from JSON (the /_fake/setup endpoint): boxes, accounts, classes, settings."""
        if "skew_ms" in spec:
            self.skew = float(spec["skew_ms"]) / 1000
        if "delay_ms" in spec:
            self.delay = float(spec["delay_ms"]) / 1000
        for box in spec.get("boxes", []):
            self.add_box(box["slug"], str(box.get("boid", "")), box.get("name", ""))
        for account in spec.get("accounts", []):
            self.add_account(
                account["email"],
                account["password"],
                account["boxes"],
                account.get("name", ""),
                account.get("credits", 100),
            )
        created = []
        for spec_class in spec.get("classes", []):
            starts = datetime.fromisoformat(spec_class.pop("starts_at"))
            opens = datetime.fromisoformat(spec_class.pop("opens_at"))
            created.append(self.add_class(spec_class.pop("box"), starts, opens, **spec_class))
        return {"classes": [asdict(c) for c in created]}

    # -- the API ---------------------------------------------------------------------------
    def member_of(self, cookie: str) -> FakeAccount | None:
        with self.lock:
            entry = self.sessions.get(cookie)
            if entry is None:
                return None
            member_id, created = entry
            if self.session_seconds is not None and self.now() - created > self.session_seconds:
                del self.sessions[cookie]
                return None
            return next((a for a in self.accounts.values() if a.member_id == member_id), None)

    def login(self, body: dict) -> tuple[int, dict, str]:
        """(status, answer, cookie) for POST /api/login."""
        with self.lock:
            account = self.accounts.get(str(body.get("username", "")).lower())
            if account is not None and account.failures >= self.LOCK_AFTER:
                message = "Has intentado entrar demasiadas veces. Inténtalo más tarde."
                return 200, {"data": {"auth": {"authOK": False}}, "error": {"message": message}}, ""
            if account is None or account.password != body.get("password"):
                if account is not None:
                    account.failures += 1
                error = {"message": "Usuario o contraseña incorrecto"}
                return 200, {"data": {"auth": {"authOK": False}}, "error": error}, ""
            if len(str(body.get("fingerprint", ""))) != 50:
                return 200, {"data": {"auth": {"authOK": False}}, "error": {"message": "fp"}}, ""
            account.failures = 0
            cookie = secrets.token_hex(24)
            self.sessions[cookie] = (account.member_id, self.now())
            roles = [
                {
                    "boid": self.boxes[slug].boid,
                    "centre_url": f"https://{slug}.aimharder.com",
                    "name": self.boxes[slug].name,
                    "role": "athlete",
                }
                for slug in account.boxes
                if slug in self.boxes
            ]
            user = {"id": account.member_id, "name": account.name, "roles": roles}
            return 200, {"data": {"auth": {"authOK": True}, "userData": user}}, cookie

    def bookings(self, account: FakeAccount, slug: str, query: dict) -> dict:
        day = query.get("day", [""])[0]
        with self.lock:
            rows = []
            for c in sorted(self.classes.values(), key=lambda c: c.starts_at):
                if c.box != slug or c.day != day:
                    continue
                state, idres = None, ""
                if account.member_id in c.booked:
                    state, idres = 1, c.booked[account.member_id]
                elif account.member_id in c.waiting:
                    state, idres = 0, c.waiting[account.member_id]
                rows.append(
                    {
                        "id": c.session_id,
                        "classId": c.session_id[-3:],
                        "className": c.name,
                        "time": c.time,
                        "timeid": c.time[:5].replace(":", "") + "_60",
                        "coachName": c.coach,
                        "ocupation": len(c.booked),
                        "limitc": c.capacity,
                        "waitlist": len(c.waiting),
                        "enabled": 1,
                        "bookState": state,
                        "idres": idres,
                    }
                )
            timetable = [{"id": r["timeid"], "time": r["time"]} for r in rows]
            return {"clasesDisp": len(rows), "timetable": timetable, "day": day, "bookings": rows}

    def book(self, account: FakeAccount, form: dict, arrived: float) -> dict:
        """Decide one POST /api/book that reached the gym at `arrived` (its clock)."""
        session_id = form.get("id", [""])[0]
        insist = form.get("insist", ["0"])[0] == "1"
        with self.lock:
            c = self.classes.get(session_id)
            if c is None or c.day != form.get("day", [""])[0]:
                return {"bookState": -12, "errorMssg": "Clase no encontrada", "errorMssgLang": "X"}
            if account.member_id in c.booked or account.member_id in c.waiting:
                return dict(ALREADY)
            if arrived < c.opens_at:
                return dict(TOO_EARLY)
            if arrived > c.starts_at:
                return {"bookState": -7, "errorMssg": "Demasiado tarde"}
            if account.credits <= 0:
                return {"bookState": -2, "errorMssg": "No tienes créditos disponibles"}
            idres = str(next(self._ids))
            if len(c.booked) < c.capacity:
                c.booked[account.member_id] = idres
                account.credits -= 1
                return {"bookState": 1, "id": idres, "clasesContratadas": account.credits}
            if insist and len(c.waiting) < c.waitlist_capacity:
                c.waiting[account.member_id] = idres
                return {"bookState": 0, "id": idres, "errorMssg": "Estás en lista de espera"}
            return {"bookState": -1, "errorMssg": "La clase está completa"}

    def cancel(self, account: FakeAccount, form: dict) -> dict:
        idres = form.get("id", [""])[0]
        late = form.get("late", ["0"])[0] == "1"
        with self.lock:
            for c in self.classes.values():
                for holders in (c.booked, c.waiting):
                    if holders.get(account.member_id) != idres:
                        continue
                    soon = c.starts_at - self.now() < c.late_cancel_seconds
                    is_late = holders is c.booked and soon
                    if is_late and not late:
                        return {"cancelState": 2, "errorMssg": "Perderás la sesión"}
                    del holders[account.member_id]
                    if holders is c.booked and not is_late:
                        account.credits += 1
                    return {"cancelState": 1}
            return {"cancelState": 3, "errorMssg": "Reserva no encontrada"}

    def record(self, entry: dict) -> None:
        with self.lock:
            self.requests.append(entry)


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
            self._answer(200, self.fake.load(self._json_body()))
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


def day_of(moment: datetime) -> date:
    return moment.astimezone(MADRID).date()
