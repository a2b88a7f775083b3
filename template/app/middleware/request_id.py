"""Request ids: taken from `X-Request-ID` when valid, else generated (asgi-correlation-id)."""

from asgi_correlation_id import CorrelationIdMiddleware

REQUEST_ID_HEADER = "X-Request-ID"

__all__ = ["REQUEST_ID_HEADER", "CorrelationIdMiddleware"]
