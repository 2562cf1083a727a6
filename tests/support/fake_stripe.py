"""A small fake of the Stripe API for the test suite (no stripe-mock is installable here).

It answers the endpoints the exchange calls — Checkout Sessions, Accounts, Account Links,
Refunds — with form-encoded requests parsed as Stripe parses them, honours idempotency keys
(same key and same body: the same object; same key and another body: an idempotency error)
and records every request. Helpers build the webhook events Stripe would send afterwards and
sign them exactly as Stripe does: ``Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret,
"<t>.<payload>")>``. It also serves a page at each Checkout URL, for the browser test.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2026-10-28.endive"
_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{next(_ids):06d}{int(time.time() * 1000) % 100000:05d}"


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = parts[i + 1] if not last else None
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append({} if nxt is not None and not nxt.isdigit() else [])
                if last:
                    node[index] = value
                else:
                    if nxt.isdigit() and not isinstance(node[index], list):
                        node[index] = []
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt.isdigit() else {})
    return root


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class FakeStripe:
    """The fake's state; ``url`` is what STRIPE_API_BASE points at."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    #: Make the next N POSTs fail with a 500 (to see that the exchange changes nothing).
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- API ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: str):  # noqa: C901
        params = parse_form(body) if method == "POST" else {}
        with self.lock:
            self.requests.append(Request(method, path, headers, params))
            if method == "POST" and self.fail_next:
                self.fail_next -= 1
                return 500, {"error": {"type": "api_error", "message": "fake outage"}}
            key = headers.get("idempotency-key")
            if method == "POST":
                if not key:
                    return 400, {"error": {"type": "invalid_request_error", "message": "no key"}}
                if key in self.idempotency:
                    seen_body, status, response = self.idempotency[key]
                    if seen_body != body:
                        return 400, {
                            "error": {
                                "type": "idempotency_error",
                                "message": "Keys for idempotent requests can only be used "
                                "with the same parameters they were first used with.",
                            }
                        }
                    return status, response
            status, response = self._route(method, path, params)
            if method == "POST" and key:
                self.idempotency[key] = (body, status, response)
            return status, response

    def _route(self, method: str, path: str, params: dict[str, Any]):
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params)
        if method == "GET" and path.startswith("/v1/checkout/sessions/"):
            found = self.sessions.get(path.rsplit("/", 1)[1])
            return (200, found) if found else (404, _missing("checkout.session"))
        if method == "POST" and path == "/v1/accounts":
            account = {
                "id": new_id("acct"),
                "object": "account",
                "type": params.get("type", "express"),
                "email": params.get("email"),
                "metadata": params.get("metadata", {}),
                "charges_enabled": False,
                "payouts_enabled": False,
                "details_submitted": False,
            }
            self.accounts[account["id"]] = account
            return 200, account
        if method == "GET" and path.startswith("/v1/accounts/"):
            found = self.accounts.get(path.rsplit("/", 1)[1])
            return (200, found) if found else (404, _missing("account"))
        if method == "POST" and path == "/v1/account_links":
            account = params.get("account", "")
            if account not in self.accounts:
                return 400, _missing("account")
            return 200, {
                "object": "account_link",
                "created": int(time.time()),
                "expires_at": int(time.time()) + 300,
                "url": f"{self.url}/connect/onboarding/{account}",
            }
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        return 404, {"error": {"type": "invalid_request_error", "message": f"no {path}"}}

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        item = params["line_items"][0]
        price = item["price_data"]
        amount = int(price["unit_amount"]) * int(item.get("quantity", 1))
        session_id = new_id("cs")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": price["currency"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "payment_intent": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "expires_at": _int(params.get("expires_at")),
            "url": f"{self.url}/checkout/{session_id}",
            "_intent_data": params.get("payment_intent_data", {}),
        }
        self.sessions[session_id] = session
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def _create_refund(self, params: dict[str, Any]):
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return 400, _missing("payment_intent")
        amount = _int(params.get("amount")) or intent["amount_received"]
        if intent["amount_refunded"] + amount > intent["amount_received"]:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded",
                    "message": "Refund amount is greater than unrefunded amount on charge.",
                }
            }
        intent["amount_refunded"] += amount
        refund = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": "succeeded",
            "metadata": params.get("metadata", {}),
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    # --- what Stripe would send afterwards ----------------------------------------------------

    def complete_checkout(self, session_id: str) -> dict[str, dict[str, Any]]:
        """The customer pays: returns the events Stripe sends (by type)."""
        with self.lock:
            session = self.sessions[session_id]
            intent_data = session["_intent_data"]
            intent_id, charge_id = new_id("pi"), new_id("ch")
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": session["amount_total"],
                "amount_received": session["amount_total"],
                "amount_refunded": 0,
                "currency": session["currency"],
                "status": "succeeded",
                "metadata": intent_data.get("metadata", {}),
                "latest_charge": charge_id,
                "application_fee_amount": _int(intent_data.get("application_fee_amount")),
                "transfer_data": intent_data.get("transfer_data"),
            }
            self.intents[intent_id] = intent
            session.update(status="complete", payment_status="paid", payment_intent=intent_id)
            public = {k: v for k, v in session.items() if not k.startswith("_")}
        public_intent = {k: v for k, v in intent.items() if k != "amount_refunded"}
        return {
            "checkout.session.completed": event("checkout.session.completed", public),
            "payment_intent.succeeded": event("payment_intent.succeeded", public_intent),
        }

    def charge_refunded(self, intent_id: str, amount_refunded: int | None = None) -> dict:
        """``charge.refunded`` with the cumulative refunded amount (now, or as given)."""
        intent = self.intents[intent_id]
        total = intent["amount_refunded"] if amount_refunded is None else amount_refunded
        return event(
            "charge.refunded",
            {
                "id": intent["latest_charge"],
                "object": "charge",
                "amount": intent["amount_received"],
                "amount_refunded": total,
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "refunded": total >= intent["amount_received"],
            },
        )

    def account_updated(self, account_id: str, *, created: int | None = None, **flags: bool):
        account = self.accounts[account_id]
        account.update(flags)
        return event("account.updated", dict(account), created=created)


def _missing(kind: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": f"No such {kind}"}}


def event(kind: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created if created is not None else int(time.time()),
        "type": kind,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def signed(evt: dict[str, Any], secret: str) -> tuple[str, dict[str, str]]:
    """The body and headers of a webhook delivery of ``evt``."""
    payload = json.dumps(evt, separators=(",", ":"))
    return payload, {"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"}


CHECKOUT_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Fake Stripe Checkout</title>'
    '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
    '<body><main><h1>Fake Stripe Checkout</h1><p id="session">{session}</p>'
    '<p id="amount">{amount} {currency}</p>'
    "<p>The test suite completes this payment with a signed webhook.</p></main></body></html>"
)


def start(fake: FakeStripe | None = None) -> tuple[FakeStripe, ThreadingHTTPServer]:
    """Serve a fake on 127.0.0.1 (a free port) in a daemon thread."""
    fake = fake or FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", new_id("req"))
            self.end_headers()
            self.wfile.write(body)

        def _api(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            if method == "GET" and path.startswith("/checkout/"):
                session = fake.sessions.get(path.rsplit("/", 1)[1])
                if session is None:
                    self._reply(404, b"no such session", "text/plain")
                    return
                page = CHECKOUT_PAGE.format(
                    session=session["id"],
                    amount=session["amount_total"] / 100,
                    currency=session["currency"].upper(),
                )
                self._reply(200, page.encode(), "text/html; charset=utf-8")
                return
            status, response = fake.handle(method, path, headers, body)
            self._reply(status, json.dumps(response).encode(), "application/json")

        def do_GET(self) -> None:  # noqa: N802
            self._api("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._api("POST")

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
