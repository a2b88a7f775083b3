"""Compose messages from templates and deliver them through the configured backend."""

import logging
from typing import Any
from urllib.parse import urlencode

from app.core.config import Settings
from app.email.backends import EmailBackend, backend_from_settings
from app.email.message import Email, check_sender
from app.email.templates import EmailTemplates

logger = logging.getLogger(__name__)


class Mailer:
    """One per process (`app.state.mailer`): the templates, the sender and the backend."""

    def __init__(
        self, backend: EmailBackend, *, sender: str, frontend_url: str, project_name: str
    ) -> None:
        self.backend = backend
        self.sender = check_sender(sender)
        self.frontend_url = frontend_url.rstrip("/")
        self.templates = EmailTemplates(project_name=project_name, frontend_url=self.frontend_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Mailer":
        return cls(
            backend_from_settings(settings),
            sender=settings.email_from,
            frontend_url=settings.frontend_url,
            project_name=settings.project_name,
        )

    def compose(self, template: str, *, to: str, **context: Any) -> Email:
        return self.templates.render(template, to=to, **context)

    def link(self, path: str, **query: str) -> str:
        """A link into the frontend (FRONTEND_URL), e.g. `/reset-password?token=...`."""
        return f"{self.frontend_url}{path}?{urlencode(query)}"

    async def send(self, email: Email) -> None:
        """Deliver now, or raise (the backend's error)."""
        await self.backend.send(email.to_mime(self.sender))

    async def send_logged(self, email: Email) -> bool:
        """Deliver now; a failure is logged, not raised (nobody is waiting). True when sent."""
        try:
            await self.send(email)
        except Exception:
            logger.exception("email to %s could not be sent: %s", email.to, email.subject)
            return False
        logger.info("email sent to %s: %s", email.to, email.subject)
        return True
