"""The fake AimHarder's state: boxes, members, classes, sessions and the decisions it makes."""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from zoneinfo import ZoneInfo

from devgyms.demo_gym import Turnstile

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


@dataclass
class Timetable:
    """A box's repeating schedule: a class every `every_minutes` round the clock (Madrid),
    bookable from `opens_before_minutes` before it starts, made day by day as days are listed."""

    SETTABLE = ("every_minutes", "opens_before_minutes", "minutes", "capacity")

    every_minutes: int = 15
    opens_before_minutes: int = 120
    minutes: int = 60
    capacity: int = 12
    names: tuple[str, ...] = ("WOD", "Open Box", "Halterofilia", "Gimnásticos")
    coaches: tuple[str, ...] = ("Lucía", "Marc", "Nerea")
    horizon_days: int = 31
    days_made: set[str] = field(default_factory=set)


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
        self.timetables: dict[str, Timetable] = {}
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

    def add_timetable(self, box: str, **options) -> Timetable:
        """Give `box` a repeating schedule (Timetable): its classes appear for any day asked."""
        timetable = Timetable(**options)
        if not 1 <= timetable.every_minutes <= 24 * 60:
            raise ValueError("every_minutes must be between 1 and 1440")
        with self.lock:
            self.timetables[box] = timetable
            return timetable

    def seed_demo(self) -> None:
        """What `make run` shows: a box, one member, and a class every 15 minutes round the clock
        (Madrid) on any day, each opening for booking 2 hours before it starts, so that at any
        hour some class opens within the next minutes and others over the next hours."""
        self.add_box("fake-box", "10122", "Fake CrossFit Box")
        self.add_account("member@example.com", "aimharder-demo", ["fake-box"], "Demo Member")
        self.add_timetable("fake-box")

    def _schedule(self, box: str, day: str) -> None:
        """Make `day`'s classes from `box`'s timetable, once, for a day near the fake's today."""
        timetable = self.timetables.get(box)
        if timetable is None or day in timetable.days_made:
            return
        try:
            date = datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            return
        today = datetime.fromtimestamp(self.now(), MADRID).date()
        if abs((date - today).days) > timetable.horizon_days:
            return  # bounded: a query for any far-off day must not grow the fake's memory
        timetable.days_made.add(day)
        midnight = datetime(date.year, date.month, date.day, tzinfo=MADRID)
        for slot in range(24 * 60 // timetable.every_minutes):
            starts = (midnight + timedelta(minutes=slot * timetable.every_minutes)).astimezone(
                MADRID
            )
            self.add_class(
                box,
                starts,
                starts - timedelta(minutes=timetable.opens_before_minutes),
                timetable.names[slot % len(timetable.names)],
                minutes=timetable.minutes,
                coach=timetable.coaches[slot % len(timetable.coaches)],
                capacity=timetable.capacity,
            )

    def load(self, spec: dict) -> dict:
        """Set up from JSON (the /_fake/setup endpoint, docs/prebooking.md): boxes, accounts,
        timetables, classes, skew and delay."""
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
        for timetable in spec.get("timetables", []):
            self.add_timetable(
                timetable["box"],
                **{k: timetable[k] for k in Timetable.SETTABLE if k in timetable},
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
            self._schedule(slug, day)
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
