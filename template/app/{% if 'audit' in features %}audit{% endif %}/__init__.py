"""The audit log: who changed what, when, from where; tamper-evident.

`AuditLog.record` adds one row to `audit_events` in the transaction of the change it records
(one INSERT, no read): it commits with the change and rolls back with it. Rows are sealed into
a hash chain per organization afterwards (`app.audit.chain`), off the request path.
"""

from app.audit.log import (
    NOBODY,
    PROJECT_CHAIN,
    REDACTED,
    SYSTEM,
    AuditLog,
    changes_of,
    content_hash,
)

__all__ = [
    "NOBODY",
    "PROJECT_CHAIN",
    "REDACTED",
    "SYSTEM",
    "AuditLog",
    "changes_of",
    "content_hash",
]
