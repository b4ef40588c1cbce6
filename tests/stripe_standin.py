"""A local stand-in for the parts of Stripe's API that mercato uses, over real HTTP.

It answers like Stripe: form-encoded requests with a bearer secret key, JSON objects and
``{"error": {...}}`` bodies with Stripe's status codes, and ``Idempotency-Key`` honoured the way
Stripe does (a repeat gets the stored answer, marked ``Idempotent-Replayed: true``, and never a
second charge; the same key with other parameters is an ``idempotency_error``).

Endpoints: ``POST /v1/payment_intents`` (created and confirmed at once), ``GET
/v1/payment_intents/search`` (by metadata), ``POST /v1/refunds``.

A PaymentIntent is paid with ``payment_method`` (one of Stripe's test PaymentMethods, or one
made by :meth:`StripeStandIn.tokenise`, as Stripe.js makes one in a browser) or with raw
``payment_method_data[card]``, which needs an expiry date like Stripe does; both at once is
refused. Each confirmed intent has a charge (``latest_charge``), given as an id or, with
``expand[]=latest_charge`` (``data.latest_charge`` for a search), as the charge object with the
card's last four digits.

Trouble is scripted per charge request with :meth:`StripeStandIn.next_charge`:
``"rate_limit"`` (429, nothing done), ``"server_error"`` (500, nothing done),
``("slow", seconds)`` (charge, then answer late), ``"drop"`` (charge, then close the
connection without an answer).

It runs its own event loop in a thread, so a test's loop, a child process or another thread
can all reach it at :attr:`StripeStandIn.url`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "sk_test_standin_" + "0" * 24
LIVE_KEY = "sk_live_standin_" + "0" * 24  # what a production profile accepts

CARD_OUTCOMES = {  # test PaymentMethod -> (decline code or None, error code, last four)
    "pm_card_visa": (None, "", "4242"),
    "pm_card_mastercard": (None, "", "4444"),
    "pm_card_visa_chargeDeclined": ("generic_decline", "card_declined", "0002"),
    "pm_card_visa_chargeDeclinedInsufficientFunds": ("insufficient_funds", "card_declined", "9995"),
    "pm_card_chargeDeclinedExpiredCard": (None, "expired_card", "0069"),
    "pm_card_chargeDeclinedProcessingError": (None, "processing_error", "0119"),
}
Card = tuple[str | None, str, str]
_SEARCH = re.compile(r"^metadata\['([^']+)'\]:'((?:[^'\\]|\\.)*)'$")

Answer = tuple[int, dict[str, Any]]


def _nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][c]=v`` form fields as nested dicts (lists as dicts keyed by index)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class _Refused(Exception):
    """A request Stripe answers with an error and does nothing for."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer[1]["error"]["message"])
        self.answer = answer


def _expanded(params: dict[str, Any], path: str) -> bool:
    """Whether the request asked for ``path`` expanded (``expand[0]=...`` form fields)."""
    return path in params.get("expand", {}).values()


def _error(status: int, kind: str, code: str, message: str, **extra: Any) -> Answer:
    return status, {"error": {"type": kind, "code": code, "message": message, **extra}}


@dataclass
class StripeStandIn:
    """The stand-in's state: what it charged and refunded, and the trouble still to come."""

    secret_key: str = SECRET_KEY
    host: str = "127.0.0.1"
    port: int = 0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, Card] = field(default_factory=lambda: dict(CARD_OUTCOMES))
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _trouble: deque[Any] = field(default_factory=deque)
    _stored: dict[str, tuple[dict[str, Any], Answer]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def captured(self) -> list[dict[str, Any]]:
        """Every PaymentIntent that took money."""
        return [i for i in self.intents.values() if i["status"] == "succeeded"]

    def tokenise(self, last4: str, *, decline_code: str | None = None, code: str = "") -> str:
        """A new PaymentMethod for a card, as Stripe.js makes one in the customer's browser."""
        with self._lock:
            method_id = f"pm_standin{next(self._ids)}"
            self.payment_methods[method_id] = (decline_code, code, last4)
        return method_id

    def next_charge(self, *trouble: Any) -> None:
        """Script what the next charge requests run into, one item each."""
        self._trouble.extend(trouble)

    # -- HTTP --------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (h.split(":", 1) for h in header_lines if ":" in h)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            parts = urlsplit(target)
            query = parse_qsl(parts.query) if method == "GET" else parse_qsl(body.decode())
            params = _nested(query)
            self.requests.append((method, parts.path, params))
            answer, replayed, trouble = self._answer(method, parts.path, params, headers)
            if trouble == "drop":
                writer.transport.abort()
                return
            if isinstance(trouble, tuple) and trouble[0] == "slow":
                await asyncio.sleep(trouble[1])
            await self._write(writer, answer, replayed)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, answer: Answer, replayed: bool) -> None:
        status, payload = answer
        content = json.dumps(payload).encode()
        lines = [
            f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}",
            "Content-Type: application/json",
            f"Content-Length: {len(content)}",
            "Request-Id: req_standin",
            "Connection: close",
        ]
        if replayed:
            lines.append("Idempotent-Replayed: true")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + content)
        await writer.drain()

    # -- Stripe's behaviour ------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[Answer, bool, Any]:
        if headers.get("authorization") != f"Bearer {self.secret_key}":
            return _error(401, "invalid_request_error", "", "Invalid API Key provided"), False, None
        if method == "GET" and path == "/v1/payment_intents/search":
            return self._search(params), False, None
        if method != "POST" or path not in ("/v1/payment_intents", "/v1/refunds"):
            return _error(404, "invalid_request_error", "", f"Unrecognized {path}"), False, None
        with self._lock:
            trouble = (
                self._trouble.popleft() if path.endswith("intents") and self._trouble else None
            )
            if trouble == "rate_limit":
                message = "Too many requests hit the API too quickly."
                return _error(429, "invalid_request_error", "rate_limit", message), False, None
            if trouble == "server_error":
                return _error(500, "api_error", "", "An unknown error occurred"), False, None
            key = headers.get("idempotency-key", "")
            if key in self._stored:
                stored_params, answer = self._stored[key]
                if stored_params != params:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters"
                    )
                    return _error(400, "idempotency_error", "", message), False, None
                return answer, True, trouble
            create = self._create_intent if path.endswith("intents") else self._create_refund
            answer = create(params)
            if key:
                self._stored[key] = (params, answer)
            return answer, False, trouble

    def _create_intent(self, params: dict[str, Any]) -> Answer:
        try:
            decline_code, code, last4 = self._card(params)
        except _Refused as refused:
            return refused.answer
        intent_id = f"pi_standin{next(self._ids)}"
        charge_id = f"ch_standin{next(self._ids)}"
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "amount_received": 0,
            "currency": params["currency"],
            "metadata": params.get("metadata", {}),
            "status": "requires_payment_method",
            "last_payment_error": None,
            "latest_charge": charge_id,
        }
        self.intents[intent_id] = intent
        self.charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "payment_intent": intent_id,
            "status": "failed" if code else "succeeded",
            "payment_method_details": {"type": "card", "card": {"last4": last4}},
        }
        expand = _expanded(params, "latest_charge")
        if not code:
            intent.update(status="succeeded", amount_received=intent["amount"])
            return 200, self._render(intent, expand)
        error = {"type": "card_error", "code": code, "message": "Your card was declined."}
        if decline_code:
            error["decline_code"] = decline_code
        intent["last_payment_error"] = error
        return 402, {"error": {**error, "payment_intent": self._render(intent, expand)}}

    def _card(self, params: dict[str, Any]) -> Card:
        """The card a PaymentIntent is paid with; :class:`_Refused` with Stripe's error if none."""
        method = params.get("payment_method")
        data = params.get("payment_method_data")
        if method is not None and data is not None:
            message = "You cannot provide both payment_method and payment_method_data."
            raise _Refused(_error(400, "invalid_request_error", "parameter_invalid", message))
        if method is None:
            card = (data or {}).get("card", {})
            missing = next((p for p in ("number", "exp_month", "exp_year") if p not in card), None)
            if missing:
                param = f"payment_method_data[card][{missing}]"
                message = f"Missing {param}"
                raise _Refused(_error(400, "invalid_request_error", "parameter_missing", message))
            return (None, "", str(card["number"])[-4:])
        if method not in self.payment_methods:
            message = f"No such PaymentMethod: '{method}'"
            raise _Refused(_error(400, "invalid_request_error", "resource_missing", message))
        return self.payment_methods[method]

    def _render(self, intent: dict[str, Any], expand: bool) -> dict[str, Any]:
        """The intent as Stripe sends it: its latest charge as an id, or expanded."""
        if not expand or intent.get("latest_charge") is None:
            return dict(intent)
        return {**intent, "latest_charge": self.charges[intent["latest_charge"]]}

    def _create_refund(self, params: dict[str, Any]) -> Answer:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None or intent["status"] != "succeeded":
            return _error(400, "invalid_request_error", "resource_missing", "No such intent")
        if any(r["payment_intent"] == intent["id"] for r in self.refunds.values()):
            message = "Charge has already been refunded."
            return _error(400, "invalid_request_error", "charge_already_refunded", message)
        refund_id = f"re_standin{next(self._ids)}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": int(params.get("amount", intent["amount"])),
            "payment_intent": intent["id"],
            "status": "succeeded",
            "metadata": params.get("metadata", {}),
        }
        self.refunds[refund_id] = refund
        return 200, refund

    def _search(self, params: dict[str, Any]) -> Answer:
        matched = _SEARCH.match(params.get("query", ""))
        if matched is None:
            return _error(400, "invalid_request_error", "", "Invalid search query")
        name, value = matched.group(1), re.sub(r"\\(.)", r"\1", matched.group(2))
        found = [i for i in self.intents.values() if i["metadata"].get(name) == value]
        expand = _expanded(params, "data.latest_charge")
        return 200, {
            "object": "search_result",
            "data": [self._render(i, expand) for i in found],
            "has_more": False,
            "next_page": None,
            "url": "/v1/payment_intents/search",
        }


class RunningStandIn:
    """Starts a :class:`StripeStandIn` on a thread of its own; ``with`` stops it."""

    def __init__(self, *, secret_key: str = SECRET_KEY) -> None:
        self.standin = StripeStandIn(secret_key=secret_key)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stripe-standin", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self.standin._serve, self.standin.host, 0)
        )
        self.standin.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    def __enter__(self) -> StripeStandIn:
        self._thread.start()
        self._ready.wait(10)
        return self.standin

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
