"""Stripe subscriptions: the plans (`plans.py`, yours to edit), what an account's subscription
grants now (`entitlements.py`) and the calls to Stripe (`gateway.py`).

The billable account is the organization with multi_tenant, else the user. Its subscription is
kept in `billing_accounts`, synced from Stripe by the webhook (`POST /api/v1/billing/webhook`).
"""
