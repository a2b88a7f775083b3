"""Turn the plain database URLs that platforms hand out into async SQLAlchemy URLs."""

from sqlalchemy.engine import URL, make_url

_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "sqlite": "sqlite+aiosqlite",
}


def to_async_url(raw: str) -> str:
    """Return `raw` with the async driver of its database, keeping explicit drivers as given.

    >>> to_async_url("postgres://u:p@db:5432/app")
    'postgresql+asyncpg://u:p@db:5432/app'
    """
    url = make_url(raw)
    backend, _, driver = url.drivername.partition("+")
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    if not driver:
        url = url.set(drivername=_ASYNC_DRIVERS[backend])
    url = _adapt_query(url)
    return url.render_as_string(hide_password=False)


def _adapt_query(url: URL) -> URL:
    query = dict(url.query)
    if url.drivername == "postgresql+asyncpg" and "sslmode" in query:
        # libpq spells it sslmode; asyncpg spells it ssl.
        query["ssl"] = query.pop("sslmode")
    if url.drivername == "mysql+asyncmy":
        query.setdefault("charset", "utf8mb4")
    return url.set(query=query)
