"""Writing audit rows: what changed (before and after, secrets redacted) and its content hash."""

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.scope import Actor
from app.db.session import connection_of
from app.db.types import utcnow
from app.models.audit import AuditEvent

REDACTED = frozenset(
    {
        "access_token",
        "hashed_password",
        "key",
        "key_hash",
        "new_password",
        "password",
        "refresh_token",
        "secret",
        "token",
        "token_hash",
    }
)
"""Fields whose values an audit row never holds: it says they changed, as "[redacted]"."""
REDACTION = "[redacted]"
PROJECT_CHAIN = "project"
"""The chain of what belongs to no organization (users, sign-ins; all without multi_tenant)."""
NOBODY = Actor("anonymous")
SYSTEM = Actor("system")
"""The application itself: a command, the startup bootstrap."""

HASHED = (
    "id",
    "occurred_at",
    "chain_key",
    "organization_id",
    "actor_type",
    "actor_id",
    "action",
    "entity_type",
    "entity_id",
    "changes",
    "request_id",
    "client_ip",
)
"""The columns a row's content hash covers: everything it says (the chain columns cover it)."""

_INSERT = insert(AuditEvent.metadata.tables["audit_events"])


def _audit_value(value: Any, field: str) -> Any:
    if value is None:
        return None
    return REDACTION if field in REDACTED else to_jsonable_python(value)


def changes_of(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, list[Any]]:
    """`{"field": [before, after]}` for every field that differs (each field of a row created or
    deleted), in JSON values, secrets redacted."""
    old, new = before or {}, after or {}
    found: dict[str, list[Any]] = {}
    for field in sorted({*old, *new}):
        if before is not None and after is not None and old.get(field) == new.get(field):
            continue
        found[field] = [_audit_value(old.get(field), field), _audit_value(new.get(field), field)]
    return found


def _text(value: Any) -> str | None:
    """A column's value as the content hash reads it, the same before and after the database."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)


def content_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 of a row's HASHED columns as canonical JSON."""
    canonical = json.dumps(
        {name: _text(values[name]) for name in HASHED}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class AuditLog:
    """Records what one caller (a request, a command) does, in the session's transaction.

    `actor` and `organization_id` are the caller's; a record may name others (a sign-in's user is
    known only once the password matched, an invitation is accepted into its organization).
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        actor: Actor | None = SYSTEM,
        organization_id: uuid.UUID | None = None,
        request_id: str | None = None,
        client_ip: str | None = None,
    ) -> None:
        self.session = session
        self.actor = actor or NOBODY  # None: a request whose caller is not known (yet)
        self.organization_id = organization_id
        self.request_id = request_id
        self.client_ip = client_ip

    async def record(
        self,
        action: str,
        entity_type: str,
        entity_id: object,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
        organization_id: uuid.UUID | None = None,
    ) -> None:
        """Add the row (one INSERT; it commits or rolls back with the caller's transaction)."""
        who = actor or self.actor
        organization = organization_id or self.organization_id
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "occurred_at": utcnow(),
            "chain_key": PROJECT_CHAIN if organization is None else str(organization),
            "organization_id": organization,
            "actor_type": who.kind,
            "actor_id": who.id,
            "action": action,
            "entity_type": entity_type,
            "entity_id": None if entity_id is None else str(entity_id),
            "changes": json.dumps(changes_of(before, after), sort_keys=True),
            "request_id": self.request_id,
            "client_ip": self.client_ip,
        }
        values["content_hash"] = content_hash(values)
        connection = await connection_of(self.session)
        await connection.execute(_INSERT, values)
