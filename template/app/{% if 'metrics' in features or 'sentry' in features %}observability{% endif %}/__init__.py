"""Production visibility: Prometheus metrics and Sentry error reports, each only when chosen."""
