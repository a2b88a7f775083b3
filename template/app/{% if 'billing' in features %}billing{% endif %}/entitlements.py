"""What an account's subscription grants now: its plan, from the state Stripe last reported.

`trialing` and `active` grant the subscribed plan (with cancel-at-period-end, until the period
ends, even if the final event never arrives); `past_due` keeps it for `BILLING_GRACE_DAYS` after
it was first seen; anything else (`canceled`, `unpaid`, `incomplete`, `incomplete_expired`,
`paused`), no subscription, or a price no plan has, is the free plan.
"""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from app.billing.plans import FREE, PLANS, Plan
from app.models.billing import BillingAccount

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
