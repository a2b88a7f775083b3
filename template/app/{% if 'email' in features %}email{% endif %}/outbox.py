"""The one way services send mail: `await outbox.send_later(email)`, never in the request's time.

`request_outbox` builds a request's outbox; today it is `after_response`: the message joins the
response's background tasks, is delivered once the response has gone, and a failure is logged.
A queue that retries (a job) fits the same seam: `request_outbox` returns an `Outbox` whose
`deliver` enqueues the message (`Email.as_dict()`), and nothing else changes.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import BackgroundTasks, Request

from app.email.mailer import Mailer
from app.email.message import Email


class Outbox:
    def __init__(self, mailer: Mailer, deliver: Callable[[Email], Awaitable[None]]) -> None:
        self.mailer = mailer
        self._deliver = deliver

    def compose(self, template: str, *, to: str, **context: Any) -> Email:
        return self.mailer.compose(template, to=to, **context)

    def link(self, path: str, **query: str) -> str:
        return self.mailer.link(path, **query)

    async def send_later(self, email: Email) -> None:
        await self._deliver(email)


def after_response(mailer: Mailer, tasks: BackgroundTasks) -> Outbox:
    """An outbox whose messages leave after the response (BackgroundTasks), failures logged."""

    async def deliver(email: Email) -> None:
        tasks.add_task(mailer.send_logged, email)

    return Outbox(mailer, deliver)


def request_outbox(request: Request, tasks: BackgroundTasks) -> Outbox:
    """Where the mail of this request goes (the dependencies of services that mail call it)."""
    return after_response(request.app.state.mailer, tasks)
