"""The calls to Stripe: the official SDK's async HTTPX client, every call bounded in time.

Stripe unreachable, slow or failing is a 503 problem with `Retry-After` within
`STRIPE_DEADLINE_SECONDS` (`PaymentProviderUnavailableError`); nothing here blocks the event loop
(the client is built without sync methods, so a sync call fails loudly instead of blocking).
"""

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
import stripe
from stripe.params import CustomerCreateParams

from app.core.errors import DomainError, ServiceUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

STRIPE_DEADLINE_SECONDS = 1.5
"""The longest a request waits for Stripe: the outage answer (503) comes within 2 s, the
request's other work (authentication, the account's row) included."""
WEBHOOK_TOLERANCE_SECONDS = 300
"""A signature older than this is refused (a replayed delivery), as Stripe's own libraries do."""


class PaymentProviderUnavailableError(ServiceUnavailableError):
    retry_after_seconds = 5

    def __init__(self) -> None:
        super().__init__("the payment provider is unavailable; retry shortly")


class InvalidWebhookError(DomainError):
    """A delivery whose signature does not prove it comes from Stripe, now."""

    status = HTTPStatus.BAD_REQUEST


OUTAGES = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, TimeoutError)


class MissingAtStripeError(Exception):
    """Stripe does not know the object asked for (a 404)."""


async def call(operation: Awaitable[T]) -> T:
    """Await a Stripe call within `STRIPE_DEADLINE_SECONDS`.

    Stripe unreachable, slow or failing is a 503 the client may retry; so is a refusal (a bad
    key, an unknown price id), logged as an error for the operator: the client can do nothing
    about it. An object Stripe does not know is `MissingAtStripeError`."""
    failure: Exception
    try:
        async with asyncio.timeout(STRIPE_DEADLINE_SECONDS):
            return await operation
    except stripe.InvalidRequestError as exc:
        if exc.http_status == HTTPStatus.NOT_FOUND:
            raise MissingAtStripeError(str(exc)) from exc
        failure = exc
    except (stripe.StripeError, TimeoutError) as exc:
        failure = exc
    if isinstance(failure, OUTAGES):
        logger.warning("Stripe unavailable: %r", failure)
    else:
        logger.error("Stripe refused a request: %r", failure)
    # Raised out of the `except` clause: a socket error as its context would read as the
    # database's outage (app.db.availability).
    raise PaymentProviderUnavailableError


def verified_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event in `payload` once its `Stripe-Signature` proves it was signed with `secret`
    less than `WEBHOOK_TOLERANCE_SECONDS` ago; `InvalidWebhookError` otherwise."""
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhookError(f"the Stripe-Signature does not verify: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidWebhookError("the body is not UTF-8") from exc
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise InvalidWebhookError("the body is not JSON") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance(event.get("data", {}).get("object"), dict)
    ):
        raise InvalidWebhookError("the body is not a Stripe event (id, type, data.object)")
    return event


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A subscription as Stripe has it now: what the account row is synced to."""

    id: str
    customer: str
    status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    metadata: Mapping[str, str]


def _timestamp(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def subscription_state(subscription: Mapping[str, Any]) -> SubscriptionState:
    """Read a subscription of either shape: current API versions keep the price and the period
    end on its items, older ones (and localstripe) on the subscription and `plan`."""
    items = (subscription.get("items") or {}).get("data") or []
    first: Mapping[str, Any] = items[0] if items else {}
    price = first.get("price") or first.get("plan") or subscription.get("plan") or {}
    period_end = first.get("current_period_end", subscription.get("current_period_end"))
    customer = subscription.get("customer")
    return SubscriptionState(
        id=str(subscription["id"]),
        customer=customer if isinstance(customer, str) else str((customer or {}).get("id")),
        status=str(subscription.get("status")),
        price_id=price.get("id"),
        current_period_end=_timestamp(period_end),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        metadata=dict(subscription.get("metadata") or {}),
    )


class StripeGateway:
    """The Stripe calls billing makes, on one client per process (closed by `aclose`)."""

    def __init__(self, api_key: str, api_base: str) -> None:
        # No retries of the SDK's own: a caller waits at most STRIPE_DEADLINE_SECONDS; Stripe
        # retries webhooks and clients retry after a 503.
        self.http = stripe.HTTPXClient(
            timeout=httpx.Timeout(STRIPE_DEADLINE_SECONDS), allow_sync_methods=False
        )
        self.client = stripe.StripeClient(
            api_key or "sk_unset",
            base_addresses={"api": api_base},
            http_client=self.http,
            max_network_retries=0,
        )

    async def aclose(self) -> None:
        await self.http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(
        self, *, email: str | None, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        params: CustomerCreateParams = {"metadata": metadata}
        if email is not None:
            params["email"] = email
        customer = await call(
            self.client.v1.customers.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        )
        return customer.id

    async def checkout_url(
        self,
        *,
        customer: str,
        price_id: str,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
    ) -> str:
        session = await call(
            self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer,
                    "client_reference_id": metadata["account_id"],
                    "metadata": metadata,
                    "line_items": [{"price": price_id, "quantity": 1}],
                    "success_url": success_url,
                    "cancel_url": cancel_url,
                    "subscription_data": {"metadata": metadata},
                }
            )
        )
        if not session.url:
            raise PaymentProviderUnavailableError
        return session.url

    async def portal_url(self, *, customer: str, return_url: str) -> str:
        session = await call(
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer, "return_url": return_url}
            )
        )
        return session.url

    async def subscription(self, subscription_id: str) -> SubscriptionState | None:
        """The subscription as Stripe has it now; None when Stripe does not know it."""
        try:
            subscription = await call(self.client.v1.subscriptions.retrieve_async(subscription_id))
        except MissingAtStripeError:
            return None
        return subscription_state(subscription.to_dict())
