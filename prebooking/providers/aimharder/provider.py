"""The AimHarder provider: prebookings booked at a real gym through its member's account.

prepare() runs AIMHARDER_PREPARE_SECONDS before the instant: it logs each account in afresh (a
session may be short-lived), estimates each box host's clock and delay (prebooking.providers.clock),
encodes each POST /api/book with its session cookie and opens its connection. The timing
worker then sends each request `lead()` seconds before our instant, so it reaches the gym at
its own opening instant plus AIMHARDER_ARRIVAL_MARGIN_MS; "too early" stays retried as the net.
An answer of a dead session logs in once more and books again; a booking is confirmed by
re-reading the day's classes, which also gives the reservation id (`idres`) needed to cancel.

The payload of an AimHarder prebooking: account (our AimHarderAccount id), box (slug), boid,
session_id, day (YYYYMMDD), insist (join the waiting list when full), plus labels for people.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from prebooking.providers import clock
from prebooking.providers.aimharder import client as aimharder
from prebooking.providers.aimharder.client import AimHarderError, LoginFailed, Session
from prebooking.providers.base import BOOKED, REJECTED, RETRY, WAITLISTED, BookingResult
from prebooking.providers.http import encode_request, read_answer

log = logging.getLogger(__name__)
SECRETS_TTL = 300.0  # seconds decrypted credentials stay in memory after prepare()


def _rejected_login(exc: LoginFailed) -> BookingResult:
    return BookingResult(REJECTED, None, {}, f"AimHarder refused the login: {exc.reason}", "login")


class AimHarderProvider:
    """Books at AimHarder boxes for the accounts members linked (one instance per process)."""

    name = "aimharder"

    def __init__(self, credentials: Callable[[int], tuple[str, str, str]]) -> None:
        """`credentials(account_id)` gives a linked account's (e-mail, password, fingerprint)."""
        self.account_credentials = credentials
        self.client = aimharder.AimHarderClient()
        self._lock = threading.Lock()
        self._sessions: dict[int, Session] = {}
        self._secrets: dict[int, tuple[str, str, str, float]] = {}

    def close(self) -> None:
        self.client.close()

    # -- accounts and sessions ---------------------------------------------------------------
    @sensitive_variables("password")
    def _credentials(self, account_id: int) -> tuple[str, str, str]:
        with self._lock:
            cached = self._secrets.get(account_id)
        if cached is not None and cached[3] > time.time():
            return cached[:3]
        email, password, fingerprint = self.account_credentials(account_id)
        with self._lock:
            self._secrets[account_id] = (email, password, fingerprint, time.time() + SECRETS_TTL)
        return email, password, fingerprint

    @sensitive_variables("password")
    def session(self, account_id: int, fresh: bool = False) -> Session:
        """A live session for the account: the last one, or a new login when `fresh`."""
        with self._lock:
            session = self._sessions.get(account_id)
        if session is not None and not fresh:
            return session
        email, password, fingerprint = self._credentials(account_id)
        session = self.client.login(email, password, fingerprint)
        with self._lock:
            self._sessions[account_id] = session
        return session

    def remember_session(self, account_id: int, session: Session) -> None:
        with self._lock:
            self._sessions[account_id] = session

    def forget_account(self, account_id: int) -> None:
        """Drop the account's session and decrypted credentials (it was unlinked)."""
        with self._lock:
            self._sessions.pop(account_id, None)
            self._secrets.pop(account_id, None)

    def forget_session(self, account_id: int) -> None:
        """The account's session is dead: the next call logs in again."""
        with self._lock:
            self._sessions.pop(account_id, None)

    # -- single attempts (retries, recovery) ------------------------------------------------
    def book(self, payload: dict, key: str) -> BookingResult:
        """Book now: log in if needed, once more if the session died, then confirm."""
        account = int(payload["account"])
        try:
            session = self.session(account)
            sent = time.time()
            result = self._book_once(session, payload)
            if result.kind == "session_expired":
                session = self.session(account, fresh=True)
                sent = time.time()
                result = self._book_once(session, payload)
        except LoginFailed as exc:
            return _rejected_login(exc)
        except AimHarderError as exc:
            return BookingResult(RETRY, None, {}, exc.reason, "unavailable")
        except Exception as exc:  # e.g. the account was unlinked meanwhile
            return BookingResult(REJECTED, None, {}, f"{type(exc).__name__}: {exc}"[:300])
        return self.confirm(session, payload, self.timed(result, payload, sent, False))

    def _book_once(self, session: Session, payload: dict) -> BookingResult:
        return self.client.book(
            session,
            payload["box"],
            str(payload["session_id"]),
            payload["day"],
            insist=bool(payload.get("insist")),
        )

    def timed(
        self, result: BookingResult, payload: dict, sent: float, targeted: bool
    ) -> BookingResult:
        """`result` with the arrival figures of a request sent at `sent` (our clock)."""
        estimate = clock.cached(aimharder.box_url(payload["box"]))
        timing = {"sent_at": round(sent, 6), "targeted": targeted}
        if estimate is not None:
            timing.update(estimate.as_json())
            timing["arrives_at"] = round(sent + estimate.shift, 6)  # by the gym's clock
        return replace(result, timing=timing)

    def confirm(self, session: Session, payload: dict, result: BookingResult) -> BookingResult:
        """Re-read the day's classes: the booking's state and its reservation id."""
        if result.outcome not in (BOOKED, WAITLISTED):
            return result
        try:
            classes = self.client.classes(
                session, payload["box"], payload["boid"], _day(payload["day"])
            )
        except AimHarderError as exc:
            return replace(result, answer={**result.answer, "confirmed": False, "why": exc.reason})
        row = next((c for c in classes if c.session_id == str(payload["session_id"])), None)
        confirmed = row is not None and row.book_state == (1 if result.outcome == BOOKED else 0)
        answer = {**result.answer, "confirmed": confirmed}
        if row is not None and row.reservation_id:
            answer["idres"] = row.reservation_id
        if result.outcome == BOOKED and row is not None and row.book_state == 0:
            # "Already booked" can mean already on the waiting list.
            return replace(result, outcome=WAITLISTED, kind="waitlisted", answer=answer)
        return replace(result, answer=answer)

    # -- the instant --------------------------------------------------------------------------
    def prepare(self, requests: list[tuple[dict, str]]) -> AimHarderRelease:
        """Log in, measure clocks and open connections now, so the instant is only writes."""
        try:
            return AimHarderRelease(self, requests)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()  # a preparer thread's own database connection


def _day(day: str):
    return datetime.strptime(day, "%Y%m%d").date()


class AimHarderRelease:
    """Requests of one instant: sessions logged in, clocks measured, connections open."""

    def __init__(self, provider: AimHarderProvider, requests: list[tuple[dict, str]]) -> None:
        self.provider = provider
        self.payloads = [payload for payload, _ in requests]
        self.failed: dict[int, BookingResult] = {}
        self.errors: dict[int, str] = {}
        self.sent: dict[int, float] = {}
        accounts = sorted({int(p["account"]) for p in self.payloads})
        self.linked = set()
        for account_id in accounts:  # database reads here, so the login threads need none
            try:
                provider._credentials(account_id)
            except Exception:  # e.g. unlinked meanwhile: reported by _login
                log.warning("aimharder account %s: credentials unavailable", account_id)
            else:
                self.linked.add(account_id)
        with ThreadPoolExecutor(max_workers=min(8, len(accounts) or 1)) as pool:
            logins = dict(zip(accounts, pool.map(self._login, accounts), strict=True))
        self._record_logins([a for a, s in logins.items() if isinstance(s, Session)])
        self.estimates: dict[str, clock.Estimate] = {}
        for slug in sorted({p["box"] for p in self.payloads}):
            self._measure(slug)
        self.requests: list[bytes] = []
        self.connections: list[http.client.HTTPConnection | None] = []
        for index, payload in enumerate(self.payloads):
            session = logins[int(payload["account"])]
            if not isinstance(session, Session):
                self.failed[index] = session
                self.requests.append(b"")
                self.connections.append(None)
                continue
            self.requests.append(self._encode(payload, session))
            try:
                self.connections.append(
                    clock.open_connection(
                        aimharder.box_url(payload["box"]),
                        settings.AIMHARDER_TIMEOUT,
                        settings.AIMHARDER_PROXY_URL,
                    )
                )
            except OSError as exc:
                self.errors[index] = f"connect: {exc}"
                self.connections.append(None)

    def _login(self, account_id: int) -> Session | BookingResult:
        if account_id not in self.linked:
            return BookingResult(REJECTED, None, {}, "The AimHarder account is no longer linked.")
        try:
            return self.provider.session(account_id, fresh=True)
        except LoginFailed as exc:
            return _rejected_login(exc)
        except AimHarderError as exc:
            return BookingResult(RETRY, None, {}, exc.reason, "unavailable")
        except Exception as exc:  # e.g. the account was unlinked
            log.warning("aimharder account %s: %s", account_id, type(exc).__name__)
            return BookingResult(REJECTED, None, {}, "The AimHarder account is no longer linked.")

    def _record_logins(self, accounts: list[int]) -> None:
        from prebooking.models import AimHarderAccount

        AimHarderAccount.objects.filter(pk__in=accounts).update(last_login_at=timezone.now())

    def _measure(self, slug: str) -> None:
        if not settings.AIMHARDER_CLOCK_PROBING:
            return
        url = aimharder.box_url(slug)
        try:
            estimate = clock.estimate(
                f"{url}/schedule",
                aimharder.box_headers(slug),
                timeout=settings.AIMHARDER_TIMEOUT,
                proxy=settings.AIMHARDER_PROXY_URL,
            )
        except Exception as exc:  # never let a measurement stop the booking
            log.warning("clock of %s not measured (%s): sending at our instant", url, exc)
            return
        self.estimates[slug] = estimate
        from prebooking.models import ClockEstimate

        figures = estimate.as_json()
        ClockEstimate.objects.update_or_create(
            host=figures.pop("host"),
            defaults={**figures, "measured_at": timezone.now()},
        )
        log.info("clock of %s: %s", url, figures)

    def _encode(self, payload: dict, session: Session) -> bytes:
        base = aimharder.box_url(payload["box"])
        parts = urlsplit(base)
        headers = aimharder.box_headers(payload["box"], session.cookie)
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        body = aimharder.book_form(
            str(payload["session_id"]), payload["day"], bool(payload.get("insist"))
        )
        return encode_request(parts.path + "/api/book", parts.netloc, body, headers)

    def lead(self, index: int) -> float:
        """How many seconds before our instant request `index` must leave (may be < 0)."""
        estimate = self.estimates.get(self.payloads[index]["box"])
        if estimate is None:
            return 0.0
        return estimate.shift - settings.AIMHARDER_ARRIVAL_MARGIN_MS / 1000

    def send(self, index: int) -> float:
        """Write request `index`; return the wall-clock time it left."""
        conn = self.connections[index]
        if conn is not None and index not in self.errors:
            try:
                conn.sock.sendall(self.requests[index])
            except OSError as exc:
                self.errors[index] = f"send: {exc}"
        self.sent[index] = time.time()
        return self.sent[index]

    def receive(self, index: int) -> BookingResult:
        """Read the answer to request `index`; a dead session books again after a new login."""
        payload = self.payloads[index]
        if index in self.failed:
            return self.failed[index]
        if index in self.errors:
            return BookingResult(RETRY, None, {}, self.errors[index])
        result = read_answer(self.connections[index], aimharder.classify_book)
        targeted = payload["box"] in self.estimates
        result = self.provider.timed(result, payload, self.sent.get(index, time.time()), targeted)
        if result.kind == "session_expired":
            self.provider.forget_session(int(payload["account"]))
            return self.provider.book(payload, "")  # logs in again, once
        session = self.provider.session(int(payload["account"]))
        return self.provider.confirm(session, payload, result)

    def close(self) -> None:
        for conn in self.connections:
            if conn is not None:
                conn.close()
