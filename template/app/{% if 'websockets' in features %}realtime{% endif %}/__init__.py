"""Realtime item events for WebSocket clients: publish from services, fan out through Redis."""

from app.realtime.events import Events, ScopedEvents
from app.realtime.hub import Hub

__all__ = ["Events", "Hub", "ScopedEvents"]
