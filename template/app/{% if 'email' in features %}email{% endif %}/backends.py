"""Where messages go: the log (`console`, the local default) or an SMTP server (`smtp`)."""

import logging
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from app.core.config import Settings

logger = logging.getLogger(__name__)


class EmailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise."""


class ConsoleBackend:
    """Logs each message instead of sending it: locally, the links in mails are in the log.

    In production only the recipient and subject are logged (the text holds one-time links).
    """

    def __init__(self, *, show_text: bool = True) -> None:
        self.show_text = show_text

    async def send(self, message: EmailMessage) -> None:
        if not self.show_text:
            logger.info(
                "email to %s not sent (EMAIL_BACKEND=console): %s",
                message["To"],
                message["Subject"],
            )
            return
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        logger.info(
            "email to %s (EMAIL_BACKEND=console): %s\n%s", message["To"], message["Subject"], text
        )


class SmtpBackend:
    """One SMTP connection per message (aiosmtplib), with STARTTLS or implicit TLS."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool = True,
        use_tls: bool = False,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.start_tls = start_tls
        self.use_tls = use_tls
        self.timeout_seconds = timeout_seconds

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.start_tls,
            use_tls=self.use_tls,
            timeout=self.timeout_seconds,
        )


def is_transient(error: BaseException) -> bool:
    """Whether sending again later may succeed (RFC 5321): the server unreachable, slow or gone
    mid-conversation, or a 4xx answer. A 5xx answer (a refused recipient, a rejected message,
    bad credentials) is final, as is any other error."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        refused = error.recipients
        return bool(refused) and all(is_transient(recipient) for recipient in refused)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500
    # aiosmtplib's connect, disconnect and timeout errors are among these.
    return isinstance(error, OSError | TimeoutError)


def backend_from_settings(settings: Settings) -> EmailBackend:
    if settings.email_backend == "console":
        return ConsoleBackend(show_text=settings.environment != "production")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpBackend(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user,
        password=password,
        start_tls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
        timeout_seconds=settings.smtp_timeout_seconds,
    )
