"""The hash chains of the audit log: sealing new rows into them, and verifying them.

Each organization's rows (and the project's, for rows of no organization) form one chain: row
`seq` n holds `prev_hash`, the `chain_hash` of row n - 1, and its own `chain_hash` =
SHA-256(prev_hash, content_hash, seq, chain). A row changed, removed or inserted after it was
sealed breaks the chain at the first row that no longer follows; `verify` names it.

Rows are sealed after the commit that wrote them, not in the request (`seal`, run every few
seconds by the app and by `python -m app.commands verify-audit --seal`): chaining in the request
would cost a locked read of the head and its update on every write, and would serialise the
writes of an organization. `audit_chains` holds each chain's head under a row lock, so that
sealers in several processes never fork a chain; and where retention cut the chain
(`pruned_through_seq`, `anchor_hash`), so that `verify` tells retention from a removed row.
"""

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, delete, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.log import PROJECT_CHAIN, content_hash
from app.db.session import SessionGate, connection_of
from app.db.types import utcnow
from app.models.audit import AuditChain, AuditEvent

logger = logging.getLogger(__name__)
_EVENTS = AuditEvent.metadata.tables["audit_events"]
_PENDING_CHAINS = sa_select(_EVENTS.c.chain_key).where(_EVENTS.c.sealed_at.is_(None)).distinct()
_PENDING_ROWS = (
    sa_select(_EVENTS.c.id, _EVENTS.c.content_hash)
    .where(_EVENTS.c.chain_key == bindparam("chain_key"), _EVENTS.c.sealed_at.is_(None))
    .order_by(_EVENTS.c.occurred_at, _EVENTS.c.id)
    .limit(bindparam("batch"))
)
_SEAL_ROW = (
    update(_EVENTS)
    .where(_EVENTS.c.id == bindparam("row_id"))
    .values(
        seq=bindparam("seq"),
        prev_hash=bindparam("prev_hash"),
        chain_hash=bindparam("chain_hash"),
        sealed_at=bindparam("sealed_at"),
    )
)

__all__ = [
    "PROJECT_CHAIN",
    "BrokenLink",
    "Verification",
    "link",
    "prune",
    "run_sealer",
    "seal",
    "verify",
]

GENESIS = "0" * 64
"""The `prev_hash` of a chain's first row."""
SEAL_BATCH = 500


def link(prev_hash: str, row_hash: str, seq: int, chain_key: str) -> str:
    """A row's `chain_hash`: it commits to the row, its place and everything before it."""
    text = json.dumps([prev_hash, row_hash, seq, chain_key], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def _chain_for_update(session: AsyncSession, chain_key: str) -> AuditChain:
    query = select(AuditChain).where(AuditChain.chain_key == chain_key).with_for_update()
    chain = (await session.exec(query)).first()
    if chain is None:
        # A second sealer creating the same chain fails on the primary key and rolls back.
        chain = AuditChain(
            chain_key=chain_key, seq=0, head_hash=GENESIS, pruned_through_seq=0, anchor_hash=GENESIS
        )
        session.add(chain)
        await session.flush()
    return chain


async def seal(session: AsyncSession, *, batch: int = SEAL_BATCH) -> int:
    """Seal the rows not sealed yet into their chains, up to `batch` per chain, one transaction
    per chain; how many were sealed. Core statements (one read of ids and hashes, one
    executemany UPDATE per chain): no ORM entity per row."""
    connection = await connection_of(session)
    chain_keys = sorted((await connection.execute(_PENDING_CHAINS)).scalars())
    await session.commit()
    sealed = 0
    for chain_key in chain_keys:
        chain = await _chain_for_update(session, chain_key)
        connection = await connection_of(session)
        pending = await connection.execute(_PENDING_ROWS, {"chain_key": chain_key, "batch": batch})
        now, changes = utcnow(), []
        for row_id, row_hash in pending.all():
            chain.seq += 1
            chain_hash = link(chain.head_hash, row_hash, chain.seq, chain_key)
            changes.append(
                {
                    "row_id": row_id,
                    "seq": chain.seq,
                    "prev_hash": chain.head_hash,
                    "chain_hash": chain_hash,
                    "sealed_at": now,
                }
            )
            chain.head_hash = chain_hash
        if changes:
            await connection.execute(_SEAL_ROW, changes)
        session.add(chain)
        await session.commit()
        sealed += len(changes)
    return sealed


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete the sealed rows older than `before` (retention), oldest first, each chain's only up
    to its first younger row so that what is kept stays one unbroken run; each chain records
    where it was cut (`pruned_through_seq`, `anchor_hash`), so that `verify` starts there. One
    transaction per chain; how many rows were deleted."""
    chains = (await session.exec(select(AuditChain.chain_key).order_by(AuditChain.chain_key))).all()
    await session.commit()
    deleted = 0
    for chain_key in chains:
        chain = await _chain_for_update(session, chain_key)
        in_chain = (col(AuditEvent.chain_key) == chain_key, col(AuditEvent.seq).is_not(None))
        young = select(func.min(AuditEvent.seq)).where(
            *in_chain, col(AuditEvent.occurred_at) >= before
        )
        first_young = (await session.exec(young)).one()
        through = chain.seq if first_young is None else first_young - 1
        if through <= chain.pruned_through_seq:
            await session.commit()
            continue
        last = select(AuditEvent.chain_hash).where(*in_chain, col(AuditEvent.seq) == through)
        anchor = (await session.exec(last)).one()
        cut = delete(AuditEvent).where(*in_chain, col(AuditEvent.seq) <= through)
        result = cast("CursorResult[Any]", await session.exec(cut))
        deleted += result.rowcount
        chain.pruned_through_seq, chain.anchor_hash = through, anchor or GENESIS
        session.add(chain)
        await session.commit()
    return deleted


@dataclass(frozen=True, slots=True)
class BrokenLink:
    chain_key: str
    seq: int
    event_id: str | None
    why: str

    def __str__(self) -> str:
        event = f" (event {self.event_id})" if self.event_id else ""
        return f"first broken link: chain {self.chain_key}, seq {self.seq}{event}: {self.why}"


@dataclass(frozen=True, slots=True)
class Verification:
    rows: int
    chains: int
    unsealed: int
    broken: BrokenLink | None

    def __str__(self) -> str:
        if self.broken is not None:
            return str(self.broken)
        return f"{self.rows} rows in {self.chains} chains verified, {self.unsealed} not sealed yet"


async def _check_chain(chain: AuditChain, rows: AsyncIterator[AuditEvent]) -> BrokenLink | None:
    prev, expected = chain.anchor_hash, chain.pruned_through_seq + 1
    key = chain.chain_key
    async for row in rows:
        event = str(row.id)
        if row.seq != expected:
            return BrokenLink(key, expected, None, f"row missing (the next row has seq {row.seq})")
        if content_hash(row.model_dump()) != row.content_hash:
            return BrokenLink(key, expected, event, "its content differs from its content_hash")
        if row.prev_hash != prev:
            return BrokenLink(key, expected, event, "prev_hash is not the previous row's hash")
        if link(prev, row.content_hash, expected, key) != row.chain_hash:
            return BrokenLink(key, expected, event, "chain_hash does not match the row")
        prev, expected = row.chain_hash, expected + 1
    if expected - 1 != chain.seq or prev != chain.head_hash:
        return BrokenLink(key, expected, None, f"row missing (the chain's head is seq {chain.seq})")
    return None


async def verify(session: AsyncSession, chain_key: str | None = None) -> Verification:
    """Check every chain (or one), row by row from its anchor; stops at the first broken link."""
    chains_query = select(AuditChain).order_by(col(AuditChain.chain_key))
    sealed = col(AuditEvent.sealed_at).is_not(None)
    unsealed_query = (
        select(func.count()).select_from(AuditEvent).where(col(AuditEvent.sealed_at).is_(None))
    )
    if chain_key is not None:
        chains_query = chains_query.where(AuditChain.chain_key == chain_key)
        unsealed_query = unsealed_query.where(AuditEvent.chain_key == chain_key)
    chains = (await session.exec(chains_query)).all()
    stray = select(AuditEvent).where(
        sealed, col(AuditEvent.chain_key).not_in([chain.chain_key for chain in chains])
    )
    if chain_key is not None:
        stray = stray.where(AuditEvent.chain_key == chain_key)
    orphan = (await session.exec(stray.limit(1))).first()
    if orphan is not None:
        gone = BrokenLink(orphan.chain_key, orphan.seq or 0, str(orphan.id), "its chain is gone")
        return Verification(0, len(chains), 0, gone)
    total = 0
    for chain in chains:
        query = (
            select(AuditEvent)
            .where(sealed, AuditEvent.chain_key == chain.chain_key)
            .order_by(col(AuditEvent.seq))
            .execution_options(yield_per=1000)
        )
        rows = await session.stream_scalars(query)
        broken = await _check_chain(chain, rows)
        await rows.close()
        if broken is not None:
            return Verification(total, len(chains), 0, broken)
        total += chain.seq - chain.pruned_through_seq
    unsealed = (await session.exec(unsealed_query)).one()
    return Verification(total, len(chains), unsealed, None)


async def run_sealer(
    factory: async_sessionmaker[AsyncSession], gate: SessionGate, every_seconds: float
) -> None:
    """Seal new rows every `every_seconds`, for as long as the app runs (a task of its lifespan);
    a failure (the database away, another process sealing the same chain) is logged and retried.
    It takes its session through the requests' session gate: it never holds a pooled connection
    that a request waits for."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            async with gate, factory() as session:
                await seal(session)
        except Exception:
            logger.warning("sealing the audit log failed; retrying", exc_info=True)
