"""AimHarder's booking web API: the one module that knows its URLs, field names and codes.

AimHarder publishes no API; this follows the public booking bots (docs/prebooking.md,
"AimHarder", names them): a JSON login on AIMHARDER_LOGIN_URL that sets the `amhrdrauth` session
cookie, and per box (AIMHARDER_BOX_URL, `{box}` = its slug) `/api/bookings`, `/api/book` and
`/api/cancelBook`. Failures answer HTTP 200 with a negative `bookState`; a change upstream
should be one edit here.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import date
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from prebooking.models import BOX_SLUG_PATTERN
from prebooking.providers.base import BOOKED, NOT_OPEN, REJECTED, RETRY, WAITLISTED, BookingResult

SESSION_COOKIE = "amhrdrauth"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
ACCEPT = "application/json, text/javascript, */*; q=0.01"
FINGERPRINT_ALPHABET = string.ascii_lowercase + string.digits

# bookState -> (outcome, kind, words for the member)
BOOK_STATES: dict[int, tuple[str, str, str]] = {
    1: (BOOKED, "booked", "booked"),
    0: (WAITLISTED, "waitlisted", "on the waiting list (the class was full)"),
    -1: (REJECTED, "full", "the class (and its waiting list) is full"),
    -2: (REJECTED, "no_credits", "no credits left, or your plan does not cover this class"),
    -4: (NOT_OPEN, "too_early", "booking is not open yet"),
    -5: (REJECTED, "payment_pending", "a payment is pending on your account"),
    -7: (REJECTED, "too_late", "too close to the start of the class"),
    -8: (REJECTED, "limit", "daily or same-class booking limit reached"),
}
# bookState -12 is a rule refusal: errorMssgLang says which.
RULE_REFUSALS: dict[str, tuple[str, str, str]] = {
    "ERROR_ANTELACION_CLIENTE": (NOT_OPEN, "too_early", "booking is not open yet"),
    "ERROR_ANTELACION_CLIENTE_HORAS": (NOT_OPEN, "too_early", "booking is not open yet"),
    "NOPUEDESRESERVAMISMAHORA": (BOOKED, "already_booked", "already booked at that time"),
    "HASSUPERADOLIMITCONTR": (REJECTED, "plan_limit", "your plan's booking limit is reached"),
}
CANCELLED, LATE_WARNING, CANCEL_ERROR = 1, 2, 3


class AimHarderError(Exception):
    """AimHarder could not be used: `reason` is fit to show the member."""

    def __init__(self, reason: str, *, unavailable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unavailable = unavailable  # AimHarder down or unreachable (vs. a refusal)


class LoginFailed(AimHarderError):
    """Wrong e-mail or password, or a locked account."""


@dataclass(frozen=True)
class Box:
    """A box (gym) the member belongs to, from the login's roles."""

    boid: str
    slug: str
    name: str


@dataclass(frozen=True)
class Session:
    """A logged-in AimHarder session: the `amhrdrauth` cookie and who it is."""

    cookie: str = field(repr=False)
    member_id: str
    name: str
    boxes: tuple[Box, ...]
    created: float = field(default_factory=time.time)


@dataclass(frozen=True)
class GymClass:
    """One class of a day as `/api/bookings` lists it."""

    session_id: str
    name: str
    time: str  # "07:00 - 08:00"
    coach: str
    taken: int
    capacity: int
    waitlist: int
    enabled: bool
    book_state: int | None  # None not booked, 1 booked, 0 waitlisted
    reservation_id: str

    @property
    def starts(self) -> str:
        """ "HH:MM" of the start."""
        return self.time.split("-")[0].strip()

    @property
    def is_full(self) -> bool:
        return self.capacity > 0 and self.taken >= self.capacity


def new_fingerprint() -> str:
    """A device id as the web app makes one: 50 characters of [a-z0-9], kept per account."""
    return "".join(secrets.choice(FINGERPRINT_ALPHABET) for _ in range(50))


def valid_box_slug(slug: str) -> bool:
    """Whether `slug` may be formatted into a box URL (a host name label, nothing more)."""
    return re.fullmatch(BOX_SLUG_PATTERN, slug) is not None


def box_url(slug: str) -> str:
    if not valid_box_slug(slug):
        raise AimHarderError(f"Not a box slug: {slug!r}")
    return settings.AIMHARDER_BOX_URL.format(box=slug).rstrip("/")


def box_headers(slug: str, cookie: str = "") -> dict[str, str]:
    """The headers the web app sends to a box, with the session cookie set for the box host."""
    base = box_url(slug)
    parts = urlsplit(base)
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": ACCEPT,
        "X-Requested-With": "XMLHttpRequest",
        "Origin": f"{parts.scheme}://{parts.netloc}",
        "Referer": f"{base}/schedule",
    }
    if cookie:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    return headers


def book_form(session_id: str, day: str, insist: bool = False) -> bytes:
    """The form body of POST /api/book (familyId empty: the account holder)."""
    return urlencode({"id": session_id, "day": day, "insist": int(insist), "familyId": ""}).encode()


def day_string(day: date) -> str:
    return day.strftime("%Y%m%d")


def is_logged_out(status_code: int, answer: dict) -> bool:
    """The session is gone: HTTP 401 or `{"logout": 1}`."""
    return status_code == 401 or bool(answer.get("logout"))


def _json(body: bytes) -> dict:
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return {"body": body[:300].decode("utf-8", "replace")}
    return answer if isinstance(answer, dict) else {"body": answer}


def _text(message) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", str(message or ""))).strip()[:300]


def classify_book(status_code: int, body: bytes) -> BookingResult:
    """Turn an answer of POST /api/book into a BookingResult (a 200 is booked only with 1)."""
    answer = _json(body)
    if is_logged_out(status_code, answer):
        return BookingResult(RETRY, status_code, answer, "session expired", "session_expired")
    if status_code >= 500 or status_code == 429:
        return BookingResult(RETRY, status_code, answer, f"AimHarder answered {status_code}")
    if status_code != 200:
        return BookingResult(REJECTED, status_code, answer, f"AimHarder answered {status_code}")
    state = answer.get("bookState")
    try:
        state = int(state) if state is not None else None
    except (TypeError, ValueError):
        state = None
    text = _text(answer.get("errorMssg"))
    if state == -12 or (state is None and answer.get("errorMssgLang")):
        code = str(answer.get("errorMssgLang") or "")
        outcome, kind, words = RULE_REFUSALS.get(code, (REJECTED, "refused", text or code))
        return BookingResult(outcome, status_code, answer, words, kind)
    if state in BOOK_STATES:
        outcome, kind, words = BOOK_STATES[state]
        if outcome == REJECTED and text:
            words = f"{words} ({text})"
        return BookingResult(outcome, status_code, answer, words, kind)
    if state is None and text:
        # Some refusals carry only free text; "antelación" is the rule that it is too early.
        if "antelaci" in text.lower():
            words = "booking is not open yet"
            return BookingResult(NOT_OPEN, status_code, answer, words, "too_early")
        return BookingResult(REJECTED, status_code, answer, text, "refused")
    return BookingResult(RETRY, status_code, answer, "unexpected answer from AimHarder")


def _classes(answer: dict) -> list[GymClass]:
    rows = []
    for row in answer.get("bookings") or []:
        state = row.get("bookState")
        rows.append(
            GymClass(
                session_id=str(row.get("id", "")),
                name=str(row.get("className", "")),
                time=str(row.get("time", "")),
                coach=str(row.get("coachName") or ""),
                taken=int(row.get("ocupation") or 0),
                capacity=int(row.get("limitc") or 0),
                waitlist=int(row.get("waitlist") or 0),
                enabled=bool(int(row.get("enabled") or 0)),
                book_state=None if state in (None, "") else int(state),
                reservation_id=str(row.get("idres") or ""),
            )
        )
    return rows


def _box_from_role(role: dict) -> Box | None:
    boid = role.get("boid") or role.get("id")
    url = str(role.get("centre_url") or role.get("url") or "")
    if not boid or not url:
        return None
    host = urlsplit(url if "//" in url else f"//{url}").hostname or url
    slug = (host.split(".")[0] if "aimharder" in host else host).lower()
    if not valid_box_slug(slug):
        return None  # not a box we can address: never stored, never put in a URL
    name = str(role.get("name") or role.get("centre_name") or role.get("box_name") or slug)
    return Box(str(boid), slug, name)


class AimHarderClient:
    """Blocking calls to AimHarder through one persistent httpx client (pooled, proxied)."""

    def __init__(self) -> None:
        self.http = httpx.Client(
            timeout=httpx.Timeout(settings.AIMHARDER_TIMEOUT, connect=5.0),
            proxy=settings.AIMHARDER_PROXY_URL or None,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise AimHarderError(
                f"AimHarder is unreachable ({type(exc).__name__})", unavailable=True
            ) from None

    @sensitive_variables("password", "body")
    def login(self, email: str, password: str, fingerprint: str) -> Session:
        """Log in (JSON login); LoginFailed on wrong credentials or a locked account."""
        body = {"username": email, "password": password, "fingerprint": fingerprint, "iniframe": 0}
        response = self._call(
            "POST", f"{settings.AIMHARDER_LOGIN_URL.rstrip('/')}/api/login", json=body
        )
        if response.status_code >= 500:
            raise AimHarderError(
                f"AimHarder is unavailable (HTTP {response.status_code})", unavailable=True
            )
        answer = _json(response.content)
        data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
        auth = data.get("auth") or {}
        if not auth.get("authOK"):
            error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            message = _text(error.get("message") or auth.get("message") or "")
            if "demasiadas" in message.lower() or "too many" in message.lower():
                raise LoginFailed("AimHarder has locked this account after too many attempts.")
            raise LoginFailed("AimHarder did not accept that e-mail and password.")
        cookie = _session_cookie(response)
        if not cookie:
            raise AimHarderError("AimHarder's login answer carried no session.", unavailable=True)
        user = data.get("userData") or {}
        boxes = tuple(
            box for role in user.get("roles") or [] if (box := _box_from_role(role)) is not None
        )
        return Session(cookie, str(user.get("id", "")), str(user.get("name", "")), boxes)

    def whoami(self, session: Session) -> bool:
        """Whether the session is still alive."""
        response = self._call(
            "GET",
            f"{settings.AIMHARDER_LOGIN_URL.rstrip('/')}/api/whoami",
            headers={"Cookie": f"{SESSION_COOKIE}={session.cookie}"},
        )
        answer = _json(response.content)
        return (
            response.status_code == 200
            and not is_logged_out(200, answer)
            and bool(answer.get("data"))
        )

    def classes(self, session: Session, slug: str, boid: str, day: date) -> list[GymClass]:
        """The day's classes at a box (an empty list: no classes that day)."""
        params = {"box": boid, "day": day_string(day), "familyId": "", "_": int(time.time() * 1000)}
        response = self._call(
            "GET",
            f"{box_url(slug)}/api/bookings",
            params=params,
            headers=box_headers(slug, session.cookie),
        )
        answer = _json(response.content)
        if is_logged_out(response.status_code, answer):
            raise SessionExpired("AimHarder ended the session.")
        if response.status_code != 200:
            raise AimHarderError(
                f"AimHarder answered {response.status_code} to the class list",
                unavailable=response.status_code >= 500,
            )
        return _classes(answer)

    def book(
        self, session: Session, slug: str, session_id: str, day: str, insist: bool = False
    ) -> BookingResult:
        """POST /api/book once, classified (`insist`: join the waiting list when full)."""
        headers = box_headers(slug, session.cookie)
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=UTF-8"
        try:
            response = self.http.post(
                f"{box_url(slug)}/api/book",
                content=book_form(session_id, day, insist),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return BookingResult(RETRY, None, {}, f"{type(exc).__name__}: {exc}"[:300])
        return classify_book(response.status_code, response.content)

    def cancel(self, session: Session, slug: str, reservation_id: str, late: bool) -> int:
        """POST /api/cancelBook: CANCELLED, LATE_WARNING (resend with late) or CANCEL_ERROR."""
        headers = box_headers(slug, session.cookie)
        response = self._call(
            "POST",
            f"{box_url(slug)}/api/cancelBook",
            data={"id": reservation_id, "late": int(late), "familyId": ""},
            headers=headers,
        )
        answer = _json(response.content)
        if is_logged_out(response.status_code, answer):
            raise SessionExpired("AimHarder ended the session.")
        try:
            return int(answer.get("cancelState"))
        except (TypeError, ValueError):
            return CANCEL_ERROR


class SessionExpired(AimHarderError):
    """The session cookie is no longer accepted: log in again."""


def _session_cookie(response: httpx.Response) -> str:
    # Read Set-Cookie ourselves: the cookie's Domain is .aimharder.com, which a client's cookie
    # jar drops for other hosts (and the fake's); we send it to each box host explicitly.
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        try:
            cookie.load(header)
        except Exception:  # noqa: S112 - a malformed cookie is simply not ours
            continue
        if SESSION_COOKIE in cookie:
            return cookie[SESSION_COOKIE].value
    return ""
