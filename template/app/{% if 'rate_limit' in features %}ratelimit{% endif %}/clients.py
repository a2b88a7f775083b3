"""Who a request comes from, for rate limiting: an API key's organization, else a user (a valid
bearer token), else an IP address.

Only what the app has verified names a client: a header anyone can vary (a made-up API key, a
forged token) would give its sender a fresh budget per value. A bearer token's signature is
checked here; an API key is known once the tenant dependency has verified it (`VerifiedKeys`):
in that process at once, and in every process sharing the Redis through a marker that the
limiter reads in the same round trip as the hit. Until then (and always for a made-up key,
which is never verified) its requests count for the IP.

The IP is the socket peer, unless the peer is a trusted proxy (FORWARDED_ALLOW_IPS): then the
nearest address in `X-Forwarded-For` that is not itself a trusted proxy. A forged
`X-Forwarded-For` from anyone else is ignored.
"""

import hashlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UserOfToken = Callable[[str], str | None]


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and networks; `*` trusts every peer (as uvicorn's FORWARDED_ALLOW_IPS does)."""
    networks: list[Network] = []
    for entry in entries:
        if entry.strip() == "*":
            networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        else:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
    return tuple(networks)


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(scope: Scope, trusted: tuple[Network, ...]) -> str:
    client = scope.get("client")
    peer: str = client[0] if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = Headers(scope=scope).get("x-forwarded-for", "")
    for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def digest(secret: str) -> str:
    """Credentials never appear in a storage key: only their hash does."""
    return hashlib.blake2b(secret.encode(), digest_size=16).hexdigest()


MARKER_PREFIX = "ratelimit:apikey:"


class VerifiedKeys:
    """API keys verified by the tenant dependency, by hash, with their organization.

    Kept in this process's memory (least recent out) and, when the counters are in Redis, as a
    marker `ratelimit:apikey:<hash>` naming the organization, with a TTL of `marker_seconds`,
    rewritten by a process that uses the key at most every half TTL. A revoked key's marker
    lives on until its TTL: its requests (refused with 401) count for its organization until then.
    """

    def __init__(self, capacity: int = 10_000, marker_seconds: int = 300) -> None:
        self.capacity = capacity
        self.marker_seconds = marker_seconds
        self._organizations: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @staticmethod
    def marker(api_key: str) -> str:
        return MARKER_PREFIX + digest(api_key)

    def remember(self, api_key: str, organization: object) -> bool:
        """Note a verified key; True when its shared marker is due to be (re)written."""
        key, name, now = digest(api_key), str(organization), time.monotonic()
        known = self._organizations.get(key)
        due = known is None or known[0] != name or now - known[1] >= self.marker_seconds / 2
        if due:
            self._organizations[key] = (name, now)
        self._organizations.move_to_end(key)
        if len(self._organizations) > self.capacity:
            self._organizations.popitem(last=False)
        return due

    def forget(self, api_key: str) -> None:
        self._organizations.pop(digest(api_key), None)

    def organization(self, api_key: str) -> str | None:
        known = self._organizations.get(digest(api_key))
        return known[0] if known is not None else None


def identity(
    scope: Scope,
    trusted: tuple[Network, ...],
    user_of: UserOfToken | None,
    keys: VerifiedKeys | None = None,
) -> str:
    if keys is not None:
        api_key = Headers(scope=scope).get("x-api-key")
        organization = keys.organization(api_key) if api_key else None
        if organization is not None:
            return f"org:{organization}"
    if user_of is not None:
        authorization = Headers(scope=scope).get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            user = user_of(authorization[7:])
            if user is not None:
                return f"user:{user}"
    return f"ip:{client_ip(scope, trusted)}"
