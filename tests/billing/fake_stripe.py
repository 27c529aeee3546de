"""A tiny fake of the Stripe API on localhost: the real stripe client talks to it over HTTP.

Serves what billing calls: GET /v1/events (created[gte] filter, limit, starting_after paging,
newest first like Stripe), DELETE /v1/subscriptions/<id> (cancel) and GET of any object put in
`objects` (/v1/<collection>/<id>, 404 resource_missing when absent). Records every request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class CheckoutFake:
    """POST /v1/customers, /v1/checkout/sessions, /v1/billing_portal/sessions, and the hosted
    pages (/pay/<id>, /portal/<id>) their URLs point at: one link each, where Stripe would go.

    `posted` holds each POST as (path, flat form fields as the stripe client encodes them,
    e.g. "line_items[0][price]"). `fail_with = (status, error)` makes every POST answer that.
    """

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, str]]] = []
        self.fail_with: tuple[int, dict[str, Any]] | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self._by_idempotency_key: dict[str, dict[str, Any]] = {}
        self._numbers = iter(range(1, 1_000_000))

    def post(self, path: str, form: dict[str, str], idempotency_key: str) -> tuple[int, dict]:
        self.posted.append((path, form))
        if self.fail_with is not None:
            status, error = self.fail_with
            return status, {"error": error}
        if idempotency_key in self._by_idempotency_key:
            return 200, self._by_idempotency_key[idempotency_key]
        number = next(self._numbers)
        metadata = {
            key[len("metadata[") : -1]: value
            for key, value in form.items()
            if key.startswith("metadata[")
        }
        if path == "/v1/customers":
            body = {
                "id": f"cus_fake_{number}",
                "object": "customer",
                "email": form.get("email"),
                "name": form.get("name"),
                "metadata": metadata,
            }
        elif path == "/v1/checkout/sessions":
            body = self._session(f"cs_test_fake_{number}", form, metadata)
        elif path == "/v1/billing_portal/sessions":
            session_id = f"bps_fake_{number}"
            body = {
                "id": session_id,
                "object": "billing_portal.session",
                "customer": form.get("customer"),
                "return_url": form.get("return_url"),
                "url": f"{self.url}/portal/{session_id}",
            }
            self.sessions[session_id] = body
        else:
            return 404, {"error": {"type": "invalid_request_error", "message": "no such path"}}
        if idempotency_key:
            self._by_idempotency_key[idempotency_key] = body
        return 200, body

    def _session(self, session_id: str, form: dict[str, str], metadata: dict) -> dict[str, Any]:
        amount = int(form.get("line_items[0][price_data][unit_amount]") or 0) * int(
            form.get("line_items[0][quantity]") or 1
        )
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": form.get("mode"),
            "customer": form.get("customer"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": metadata,
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "amount_total": amount or None,
            "currency": form.get("line_items[0][price_data][currency]"),
            "status": "open",
            "url": f"{self.url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return session

    def hosted_page(self, path: str) -> str | None:
        """Stripe's hosted Checkout / Portal page: one link, to where Stripe would send you."""
        kind, _, session_id = path.strip("/").partition("/")
        session = self.sessions.get(session_id)
        if session is None or kind not in {"pay", "portal"}:
            return None
        if kind == "pay":
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
            return f'<!doctype html><h1>Fake Checkout</h1><a id="pay" href="{target}">Pay</a>'
        back = session["return_url"]
        return f'<!doctype html><h1>Fake Portal</h1><a id="back" href="{back}">Back</a>'


class FakeStripe(CheckoutFake):
    """State of the fake: the events it lists, the requests it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.canceled: list[str] = []
        self.missing: set[str] = set()  # subscriptions the API answers 404 resource_missing for
        self.objects: dict[str, dict[str, Any]] = {}  # current state by id, for GET /v1/.../<id>
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def list_events(self, query: dict[str, list[str]]) -> dict[str, Any]:
        gte = int(query.get("created[gte]", ["0"])[0])
        limit = int(query.get("limit", ["10"])[0])
        newest_first = sorted(
            (event for event in self.events if event["created"] >= gte),
            key=lambda event: (event["created"], event["id"]),
            reverse=True,
        )
        after = query.get("starting_after", [None])[0]
        if after is not None:
            ids = [event["id"] for event in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[:limit]
        return {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(newest_first) > limit,
            "data": page,
        }

    def put(self, *objects: dict[str, Any]) -> None:
        """Make these the objects' current state at "Stripe" (what a retrieve returns)."""
        for obj in objects:
            self.objects[obj["id"]] = obj

    def retrieve(self, path: str) -> dict[str, Any] | None:
        """The object a GET /v1/<collection>/<id> names, or None (404)."""
        object_id = path.rstrip("/").rsplit("/", 1)[-1]
        return self.objects.get(object_id)

    def cancel(self, subscription_id: str) -> dict[str, Any]:
        self.canceled.append(subscription_id)
        return {"id": subscription_id, "object": "subscription", "status": "canceled"}


def _handler(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if (page := fake.hosted_page(urlsplit(self.path).path)) is not None:
                data = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            parts = urlsplit(self.path)
            fake.requests.append(("GET", self.path))
            if parts.path == "/v1/events":
                self._answer(200, fake.list_events(parse_qs(parts.query)))
            elif parts.path.startswith("/v1/") and (found := fake.retrieve(parts.path)):
                self._answer(200, found)
            elif parts.path.startswith("/v1/"):
                error = {"type": "invalid_request_error", "code": "resource_missing"}
                self._answer(404, {"error": {**error, "message": "No such object"}})
            else:
                self._answer(404, {"error": {"type": "invalid_request_error"}})

        def do_POST(self) -> None:
            fake.requests.append(("POST", self.path))
            length = int(self.headers.get("Content-Length") or 0)
            form = {
                key: values[-1]
                for key, values in parse_qs(self.rfile.read(length).decode()).items()
            }
            key = self.headers.get("Idempotency-Key") or ""
            self._answer(*fake.post(urlsplit(self.path).path, form, key))

        def do_DELETE(self) -> None:
            fake.requests.append(("DELETE", self.path))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            prefix = "/v1/subscriptions/"
            subscription_id = self.path[len(prefix) :]
            if self.path.startswith(prefix) and subscription_id in fake.missing:
                error = {"type": "invalid_request_error", "code": "resource_missing"}
                self._answer(404, {"error": {**error, "message": "No such subscription"}})
            elif self.path.startswith(prefix):
                self._answer(200, fake.cancel(subscription_id))
            else:
                self._answer(404, {"error": {"type": "invalid_request_error"}})

    return Handler


def start() -> FakeStripe:
    """Start a fake on a free localhost port, serving from a daemon thread."""
    fake = FakeStripe()
    fake.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    # A short poll: shutdown() waits up to one poll, and every test using the fake shuts it down.
    serve = {"target": fake.server.serve_forever, "kwargs": {"poll_interval": 0.02}}
    threading.Thread(**serve, daemon=True).start()
    return fake
