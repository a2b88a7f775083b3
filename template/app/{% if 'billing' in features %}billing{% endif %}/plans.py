"""The plans you sell and what each grants: edit this module to change them.

A plan has a key (the `plan` of `POST /api/v1/billing/checkout`), boolean features that routes
ask for with `require_entitlement("export")`, and numeric limits that services check (`items.max`:
how many items an account may hold). A limit a plan does not name is unlimited, so a resource
added later has no limit until you add one here. `free` applies to every account without a
subscription that grants another plan; every other plan needs its Stripe price id in
`STRIPE_PRICES` (a JSON object such as {"pro": "price_1Q..."}).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Plan:
    key: str
    features: frozenset[str] = frozenset()
    limits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def limit(self, name: str) -> int | None:
        """The plan's limit called `name`; None: unlimited."""
        return self.limits.get(name)


FREE = Plan("free", limits=MappingProxyType({"items.max": 1_000}))

PLANS: Mapping[str, Plan] = MappingProxyType(
    {
        plan.key: plan
        for plan in (
            FREE,
            Plan("pro", frozenset({"export"}), MappingProxyType({"items.max": 10_000})),
        )
    }
)
"""Every plan by key; `free` first."""

PAID_PLANS: tuple[str, ...] = tuple(key for key in PLANS if key != FREE.key)
"""The plans sold through Stripe: each needs a price id in `STRIPE_PRICES`."""
