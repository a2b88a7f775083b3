"""A throwaway Redis server without persistence (except across stop()/start()), driven with
redis-py; database "names" map to the numbers 1-15."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import redis

from backforge.servers.base import LOOPBACK, Service, ServiceError, check_name, find_binary, missing

DATABASES = 16
INSTALL_HINT = "apt-get install -y redis-server"


@dataclass(frozen=True)
class RedisTools:
    server: str


def redis_tools() -> RedisTools:
    server = find_binary("redis-server")
    if server is None:
        raise missing("The Redis server redis-server was", INSTALL_HINT)
    return RedisTools(server=server)


class RedisService(Service):
    kind = "redis"
    label = "Redis"

    def __init__(self, *, user: str, password: str, timeout: float) -> None:
        self.tools = redis_tools()
        # The rendered apps use plain redis://127.0.0.1:PORT/N URLs: no account, no password.
        super().__init__(user="", password="", timeout=timeout)
        self._numbers: dict[str, int] = {}

    def prepare(self) -> None:
        pass

    def command(self) -> list[str]:
        return [
            self.tools.server,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--databases",
            str(DATABASES),
        ]

    def _client(self, number: int = 0, timeout: float | None = None) -> redis.Redis:
        wait = self.timeout if timeout is None else timeout
        return redis.Redis(
            host=LOOPBACK,
            port=self.port,
            db=number,
            socket_timeout=wait,
            socket_connect_timeout=wait,
            decode_responses=True,
        )

    def _call(self, number: int, *args: str) -> object:
        try:
            with self._client(number) as client:
                return client.execute_command(*args)
        except redis.RedisError as exc:
            raise ServiceError(f"redis {' '.join(args[:1])} failed: {exc}") from exc

    def ping(self) -> bool:
        try:
            with self._client(timeout=2) as client:
                return bool(client.ping())
        except (OSError, redis.RedisError):
            return False

    def before_stop(self) -> None:
        # No save points are configured (that would slow every test down), so write the
        # snapshot now: start() loads it and the data is back, as with the SQL servers.
        self._call(0, "SAVE")

    def _number(self, database: str | None) -> int:
        if database is None:
            return 0
        if database.isdigit() and int(database) < DATABASES:
            return int(database)
        try:
            return self._numbers[database]
        except KeyError:
            raise ValueError(
                f"unknown Redis database {database!r}: create_database() it first, "
                f"or use a number from 0 to {DATABASES - 1}"
            ) from None

    def url(self, database: str | None) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{self._number(database)}"

    def execute(self, statement: str, database: str | None) -> str:
        return _format(self._call(self._number(database), *shlex.split(statement)))

    def create_database(self, name: str) -> str:
        with self._lock:
            if check_name(name) in self._numbers:
                raise ServiceError(f"Redis database {name!r} already exists")
            taken = set(self._numbers.values())
            free = [n for n in range(1, DATABASES) if n not in taken]
            if not free:
                raise ServiceError(
                    f"all {DATABASES - 1} Redis databases are in use; drop one first"
                )
            self._call(free[0], "FLUSHDB")
            self._numbers[name] = free[0]
            return self.url(name)

    def drop_database(self, name: str) -> None:
        with self._lock:
            number = self._numbers.pop(check_name(name), None)
            if number is not None:
                self._call(number, "FLUSHDB")


def _format(reply: object) -> str:
    """A reply as redis-cli prints it: one line per element, nothing for nil."""
    if reply is None:
        return ""
    if isinstance(reply, list | tuple):
        return "\n".join(_format(item) for item in reply)
    if isinstance(reply, bool):
        return "OK" if reply else "0"
    return str(reply)
