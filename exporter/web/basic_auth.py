"""Basic auth that holds under a flood of wrong passwords: see BasicAuthChecker."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import bcrypt
import structlog
from aiohttp import BasicAuth
from pydantic import SecretStr

log = structlog.get_logger("exporter.web.basic_auth")

_DECOY_PASSWORD = b"decoy password for unknown users"
_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt refuses longer passwords


class Verdict(enum.Enum):
    """What basic auth answers a request; each maps to one HTTP status."""

    ALLOW = 200
    DENY = 401
    THROTTLED = 429  # this client's budget of failed checks is spent
    BUSY = 503  # every bcrypt worker and queue place is taken


@dataclass(frozen=True)
class BasicAuthLimits:
    """How much bcrypt work credentials not seen before may cause, and what is remembered.

    A verified correct credential is remembered apart from failures, so no number of
    wrong passwords can evict it; a remembered credential costs no bcrypt check.
    """

    bcrypt_workers: int = 2  # bcrypt checks running at once, each in a thread
    bcrypt_queue: int = 32  # checks waiting for a worker; beyond, BUSY without a check
    successes_per_user: int = 4  # verified credentials remembered, per configured user
    failure_cache_size: int = 1024  # recent wrong credentials remembered
    client_failure_burst: int | None = 10  # failed checks a client may cause at once; None: off
    client_failure_refill_seconds: float = 6.0  # one more failed check allowed per this
    tracked_clients: int = 1024  # clients whose failure budget is remembered
    refusal_log_interval_seconds: float = 60.0  # at most one basic_auth_refused line per this

    def __post_init__(self) -> None:
        if self.bcrypt_workers < 1 or self.client_failure_refill_seconds <= 0:
            raise ValueError("bcrypt_workers must be >= 1 and the refill time positive")


DEFAULT_AUTH_LIMITS = BasicAuthLimits()


class _FailureBudget:
    """A token bucket per client address of the bcrypt checks it may cause to fail.

    A check takes a token before it starts and a correct credential gives it back,
    so a scraper with the right password never runs out. At most `tracked_clients`
    buckets are kept (least recently used dropped), so memory stays bounded when
    many addresses take part; a dropped client starts again with a full bucket.
    """

    def __init__(
        self, burst: int, refill_seconds: float, max_clients: int, clock: Callable[[], float]
    ) -> None:
        self._burst = burst
        self._refill_seconds = refill_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> bool:
        now = self._clock()
        tokens, then = self._buckets.get(client, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - then) / self._refill_seconds)
        taken = tokens >= 1
        self._buckets[client] = (tokens - 1 if taken else tokens, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return taken

    def give_back(self, client: str) -> None:
        if client in self._buckets:
            tokens, then = self._buckets[client]
            self._buckets[client] = (min(float(self._burst), tokens + 1), then)


class BasicAuthChecker:
    """Checks basic-auth credentials so that a flood of wrong ones cannot slow right ones.

    In order: a remembered correct credential is allowed, a remembered wrong one
    denied, both without bcrypt; a credential already being checked waits for that
    check; otherwise, if a bcrypt queue place and the client's failure budget allow,
    bcrypt runs in one of `bcrypt_workers` threads. Remembered credentials are
    HMAC-SHA256 digests of (user, password, hash) under a random per-process key:
    no password is kept, and nothing kept can be cracked offline.
    """

    def __init__(
        self,
        limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
        *,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = limits
        self._checkpw = checkpw
        self._clock = clock
        self._digest_key = secrets.token_bytes(32)
        self._successes: OrderedDict[bytes, None] = OrderedDict()
        self._failures: OrderedDict[bytes, None] = OrderedDict()
        self._checking: dict[bytes, asyncio.Task[bool]] = {}
        self._workers = asyncio.Semaphore(limits.bcrypt_workers)
        self._budget = (
            _FailureBudget(
                limits.client_failure_burst,
                limits.client_failure_refill_seconds,
                limits.tracked_clients,
                clock,
            )
            if limits.client_failure_burst is not None
            else None
        )
        self._decoy_hashes: dict[int, bytes] = {}
        self._refused: dict[Verdict, int] = {Verdict.THROTTLED: 0, Verdict.BUSY: 0}
        self._next_refusal_log = float("-inf")

    @property
    def limits(self) -> BasicAuthLimits:
        return self._limits

    async def check(
        self, user: bytes, password: bytes, users: Mapping[str, SecretStr], client: str
    ) -> Verdict:
        """The verdict for `user:password` from `client` (an address) against `users`.

        Unknown users are checked against a decoy hash of the highest configured
        cost, so their answer takes as long as a wrong password's.
        """
        hashed = _constant_time_lookup(users, user)
        key = self._digest(user, password, hashed)
        if key in self._successes:
            self._successes.move_to_end(key)
            return Verdict.ALLOW
        if key in self._failures:
            self._failures.move_to_end(key)
            return Verdict.DENY
        if len(password) > _BCRYPT_MAX_PASSWORD_BYTES:
            return Verdict.DENY  # bcrypt never matches these: no check needed
        checking = self._checking.get(key)
        charged = False
        if checking is None:
            if len(self._checking) >= self._limits.bcrypt_workers + self._limits.bcrypt_queue:
                return self._refuse(Verdict.BUSY, client)
            if self._budget is not None:
                if not self._budget.take(client):
                    return self._refuse(Verdict.THROTTLED, client)
                charged = True
            checking = asyncio.create_task(self._bcrypt_check(key, password, hashed, users))
            self._checking[key] = checking
            checking.add_done_callback(lambda _: self._checking.pop(key, None))
        # Shielded: a client that hangs up does not cancel a check others may wait on.
        matches = await asyncio.shield(checking)
        if charged and matches and self._budget is not None:
            self._budget.give_back(client)
        return Verdict.ALLOW if matches else Verdict.DENY

    async def _bcrypt_check(
        self, key: bytes, password: bytes, hashed: bytes | None, users: Mapping[str, SecretStr]
    ) -> bool:
        async with self._workers:
            candidate = hashed if hashed is not None else await self._decoy_hash(users)
            matches = await asyncio.to_thread(self._verify, password, candidate)
        matches = matches and hashed is not None
        if matches:
            _remember(self._successes, key, max(1, len(users)) * self._limits.successes_per_user)
        else:
            _remember(self._failures, key, self._limits.failure_cache_size)
        return matches

    def _verify(self, password: bytes, hashed: bytes) -> bool:
        try:
            return self._checkpw(password, hashed)
        except ValueError:  # bcrypt refuses passwords over 72 bytes
            return False

    async def _decoy_hash(self, users: Mapping[str, SecretStr]) -> bytes:
        """A hash of the highest configured cost; made in a worker slot, as it costs a check."""
        cost = max(int(hashed.get_secret_value()[4:6]) for hashed in users.values())
        if cost not in self._decoy_hashes:
            salt = bcrypt.gensalt(cost)
            self._decoy_hashes[cost] = await asyncio.to_thread(bcrypt.hashpw, _DECOY_PASSWORD, salt)
        return self._decoy_hashes[cost]

    def _digest(self, user: bytes, password: bytes, hashed: bytes | None) -> bytes:
        """HMAC-SHA256 of the length-prefixed parts; the hash ties it to one config."""
        digest = hmac.new(self._digest_key, digestmod=hashlib.sha256)
        for part in (user, password, hashed or b""):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.digest()

    def _refuse(self, verdict: Verdict, client: str) -> Verdict:
        """Count a refusal; log the counts at most once per refusal_log_interval_seconds."""
        self._refused[verdict] += 1
        now = self._clock()
        if now >= self._next_refusal_log:
            self._next_refusal_log = now + self._limits.refusal_log_interval_seconds
            log.warning(
                "basic_auth_refused",
                reason=verdict.name.lower(),
                client=client,
                throttled=self._refused[Verdict.THROTTLED],
                busy=self._refused[Verdict.BUSY],
            )
            self._refused = dict.fromkeys(self._refused, 0)
        return verdict


def _remember(cache: OrderedDict[bytes, None], key: bytes, size: int) -> None:
    cache[key] = None
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None.

    None for another scheme, bad base64, no colon, or credentials that are not UTF-8.
    """
    if header is None:
        return None
    try:
        auth = BasicAuth.decode(header, encoding="utf-8")
    except ValueError:  # UnicodeError is a ValueError too
        return None
    return auth.login.encode(), auth.password.encode()


def _constant_time_lookup(users: Mapping[str, SecretStr], user: bytes) -> bytes | None:
    """The hash for `user`, comparing against every configured name in constant time."""
    found = None
    for name, hashed in users.items():
        if hmac.compare_digest(name.encode(), user):
            found = hashed.get_secret_value().encode()
    return found
