"""Whose rows a service works on: one owner's, one organization's, or everyone's.

A resource's service dependency resolves the scope of the request (`app/dependencies/scope.py`);
the service and its repository take it as it is, so one service class serves every kind of
project. Cached reads and events are keyed by the scope too: never served to another scope.
"""

import uuid
from dataclasses import dataclass, field
from typing import Literal, cast

from app.core.errors import PermissionDeniedError

ScopeKind = Literal["owner", "organization", "project"]
ActorKind = Literal["user", "api_key", "system", "anonymous"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user, an organization's API key, the application itself, or nobody known."""

    kind: ActorKind
    id: uuid.UUID | None = None

    @classmethod
    def acting(cls, user_id: uuid.UUID | None, api_key_id: uuid.UUID | None) -> "Actor":
        """A signed-in user, else an organization's API key."""
        return cls("user", user_id) if user_id is not None else cls("api_key", api_key_id)


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    id: uuid.UUID | None = None
    """The owner's or the organization's id; None: every row of the project."""
    stamp: dict[str, uuid.UUID | None] = field(default_factory=dict)
    """The columns a new row gets: its owner, its organization."""
    writable: bool = True
    """False: the caller may read these rows, not change them."""
    actor: Actor | None = None
    """Who works on them (what an audit row names); None: not known here (a job's read)."""

    @classmethod
    def owner(cls, owner_id: uuid.UUID) -> "Scope":
        return cls("owner", owner_id, {"owner_id": owner_id}, actor=Actor("user", owner_id))

    @classmethod
    def organization(
        cls,
        organization_id: uuid.UUID,
        *,
        user_id: uuid.UUID | None,
        api_key_id: uuid.UUID | None = None,
    ) -> "Scope":
        """An organization's rows; a new one records who made it (None for an API key)."""
        stamp = {"organization_id": organization_id, "owner_id": user_id}
        actor = Actor.acting(user_id, api_key_id)
        return cls("organization", organization_id, stamp, actor=actor)

    @classmethod
    def everyone(cls, *, writable: bool = True, actor: Actor | None = None) -> "Scope":
        return cls("project", None, {}, writable, actor)

    @property
    def key(self) -> str:
        """The scope in cache keys and event channels."""
        return "all" if self.id is None else str(self.id)

    @property
    def token(self) -> str:
        """The scope as a string that `from_token` reads back (a job's argument, say)."""
        return f"{self.kind}:{self.key}"

    @classmethod
    def from_token(cls, token: str) -> "Scope":
        """The scope of `token`, to read its rows (a job that runs for it writes none)."""
        kind, _, key = token.partition(":")
        if kind not in ("owner", "organization", "project"):
            raise ValueError(f"not a scope: {token!r}")
        scope_id = None if key == "all" else uuid.UUID(key)
        return cls(cast(ScopeKind, kind), scope_id, writable=False)

    def require_write(self) -> None:
        if not self.writable:
            raise PermissionDeniedError("only an administrator can change these rows")
