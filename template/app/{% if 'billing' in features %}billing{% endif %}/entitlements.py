"""What an account's subscription grants now: its plan, from the state Stripe last reported.

`trialing` and `active` grant the subscribed plan (with cancel-at-period-end, until the period
ends, even if the final event never arrives); `past_due` keeps it for `BILLING_GRACE_DAYS` after
it was first seen; anything else (`canceled`, `unpaid`, `incomplete`, `incomplete_expired`,
`paused`), no subscription, or a price no plan has, is the free plan.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus

from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.plans import FREE, PLANS, Plan
from app.core.errors import DomainError
from app.core.scope import Scope, ScopeKind
from app.db.types import utcnow
from app.models.billing import BillingAccount
from app.repositories.billing import BillingRepository

logger = logging.getLogger(__name__)

GRANTING = frozenset({"trialing", "active"})
LIVE = GRANTING | {"past_due"}
"""Statuses of a subscription that may still grant its plan."""


class Catalogue:
    """The plans and their Stripe price ids (`STRIPE_PRICES`)."""

    def __init__(self, prices: Mapping[str, str]) -> None:
        self.prices = dict(prices)
        self._plan_of_price = {price: PLANS[key] for key, price in prices.items()}

    def price_of(self, plan: str) -> str | None:
        return self.prices.get(plan)

    def plan_of(self, price_id: str | None) -> Plan:
        if price_id is None:
            return FREE
        plan = self._plan_of_price.get(price_id)
        if plan is None:
            logger.warning("price %s is no plan's (STRIPE_PRICES): the free plan applies", price_id)
            return FREE
        return plan


def effective_plan(
    account: BillingAccount | None, catalogue: Catalogue, now: datetime, grace: timedelta
) -> Plan:
    """The plan `account` has at `now`."""
    if account is None or account.status not in LIVE:
        return FREE
    if account.status == "past_due":
        since = account.past_due_since
        if since is None or now >= since + grace:
            return FREE
    elif account.cancel_at_period_end:
        end = account.current_period_end
        if end is not None and now >= end:
            return FREE
    return catalogue.plan_of(account.price_id)


class PlanLimitError(DomainError):
    """The account's plan does not allow this: a 402 naming the plan and the limit."""

    status = HTTPStatus.PAYMENT_REQUIRED

    def __init__(self, plan: Plan, limit: str, allowed: int) -> None:
        super().__init__(f"plan {plan.key!r} allows {allowed} ({limit}); upgrade to create more")


class PlanFeatureError(DomainError):
    """The account's plan does not include a feature: a 402 naming the plan and the feature."""

    status = HTTPStatus.PAYMENT_REQUIRED

    def __init__(self, plan: Plan, feature: str) -> None:
        super().__init__(f"plan {plan.key!r} does not include {feature}; upgrade to use it")


class Billing:
    """What the plan of a scope's billable account allows: services ask `check_limit`.

    The billable scope kind is the organization's with multi_tenant, else the owner's; rows of
    another kind (the project's, everyone's) belong to no account and have no limit."""

    def __init__(self, catalogue: Catalogue, grace: timedelta, billable: ScopeKind) -> None:
        self.catalogue = catalogue
        self.grace = grace
        self.billable = billable

    async def plan_of(self, session: AsyncSession, scope: Scope) -> Plan | None:
        """The plan of the scope's account now; None for a scope no account pays for."""
        if scope.kind != self.billable or scope.id is None:
            return None
        account = await BillingRepository(session).get_account(scope.id)
        return effective_plan(account, self.catalogue, utcnow(), self.grace)

    async def check_limit(
        self,
        session: AsyncSession,
        scope: Scope,
        limit: str,
        count: Callable[[], Awaitable[int]],
    ) -> None:
        """`PlanLimitError` when the scope already holds as many as its plan's `limit` allows.

        A soft limit: two creations at once at the limit may both pass."""
        plan = await self.plan_of(session, scope)
        if plan is None:
            return
        allowed = plan.limit(limit)
        if allowed is not None and await count() >= allowed:
            raise PlanLimitError(plan, limit, allowed)

    async def require(self, session: AsyncSession, account_id: uuid.UUID, feature: str) -> None:
        """`PlanFeatureError` unless the account's plan now includes `feature`."""
        account = await BillingRepository(session).get_account(account_id)
        plan = effective_plan(account, self.catalogue, utcnow(), self.grace)
        if feature not in plan.features:
            raise PlanFeatureError(plan, feature)
