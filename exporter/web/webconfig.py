"""TLS, basic auth and response headers from a Prometheus `--web.config.file`.

The file format is the one of prometheus/exporter-toolkit (what every Go exporter
accepts); docs/web-config.md says what is supported here and what is ignored.

The file and the certificate files it names are watched: a change is picked up by
the next request or TLS handshake. A change that does not load, an empty file, or
one that would turn basic auth off keeps the previous configuration in force and is
logged as `web_config_reload_failed`.

Basic auth holds under a flood of wrong passwords: see BasicAuthChecker.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import ssl
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
import yaml
from aiohttp import BasicAuth, hdrs, web
from aiohttp.typedefs import Handler
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

logger = logging.getLogger("exporter.web.webconfig")

REALM = "devin-exporter"
DEFAULT_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz"})

# The only headers exporter-toolkit lets a web config set, with their allowed
# values where the header is an enumeration.
_ALLOWED_HEADERS: Mapping[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}

# Go's cipher suite names (crypto/tls CipherSuites and InsecureCipherSuites) to
# OpenSSL's. None marks a TLS 1.3 suite: Go does not let them be chosen either.
_CIPHER_SUITES: Mapping[str, str | None] = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
}

_TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Python's ssl cannot accept a client certificate without verifying it, so Go's
# "request" and "require any" policies map to the nearest verifying mode;
# RequestClientCert never verified nor used the certificate, so it asks for none.
_VERIFY_MODES: Mapping[str | None, ssl.VerifyMode] = {
    None: ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "RequireClientCert": ssl.CERT_REQUIRED,  # exporter-toolkit's older spelling
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}

# Keys exporter-toolkit knows that this exporter refuses rather than ignores,
# because ignoring them would weaken what the operator asked for.
_UNSUPPORTED_TLS_KEYS: Mapping[str, str] = {
    "cert": "inline certificates are not supported, use cert_file",
    "key": "inline keys are not supported, use key_file",
    "client_ca": "inline CAs are not supported, use client_ca_file",
    "client_allowed_sans": "client_allowed_sans is not supported",
}

_BCRYPT_HASH = re.compile(r"\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_BCRYPT_LIKE = re.compile(r"\$2[abxy]?\$[0-9]*\$?[./A-Za-z0-9]*")
_DECOY_PASSWORD = b"decoy password for unknown users"
_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt refuses longer passwords

ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
CurveName = Literal["CurveP256", "CurveP384", "CurveP521", "X25519", "X25519MLKEM768"]


class WebConfigError(Exception):
    """The web config file cannot be used; the message names the file and the key."""

    def __init__(self, path: Path, key: str, reason: str) -> None:
        self.path = path
        self.key = _redact(key) or "(top level)"
        self.reason = _redact(reason)
        super().__init__(f"web config {path}: {self.key}: {self.reason}")


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


OptionalFile = Annotated[Path | None, BeforeValidator(_blank_is_none)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        """`key:` with nothing after it is YAML null; Go reads it as the zero value."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class TLSServerConfig(_Section):
    """`tls_server_config`; TLS is on when any file or client_auth_type is given."""

    cert_file: OptionalFile = None
    key_file: OptionalFile = None
    client_auth_type: ClientAuthType | None = None
    client_ca_file: OptionalFile = None
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[CurveName, ...] = ()  # validated, then ignored

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, reason in _UNSUPPORTED_TLS_KEYS.items():
                if key in data:
                    raise ValueError(f"{key}: {reason}")
        return data

    @field_validator("cert_file", "key_file", "client_ca_file")
    @classmethod
    def _relative_to_config_dir(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base_dir = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if value is None or base_dir is None:
            return value
        return Path(base_dir) / value

    @field_validator("cipher_suites")
    @classmethod
    def _known_cipher_suites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in _CIPHER_SUITES:
                raise ValueError(f"unknown cipher suite {name!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        if not self.enabled:
            return self
        if self.cert_file is None:
            raise ValueError("cert_file is required when TLS is configured")
        if self.key_file is None:
            raise ValueError("key_file is required when TLS is configured")
        verify_mode = _VERIFY_MODES[self.client_auth_type]
        if self.client_ca_file is not None and self.client_auth_type in (None, "NoClientCert"):
            raise ValueError("client_ca_file is set but client_auth_type does not use it")
        if verify_mode != ssl.CERT_NONE and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        return self

    @property
    def enabled(self) -> bool:
        files = (self.cert_file, self.key_file, self.client_ca_file)
        return self.client_auth_type is not None or any(f is not None for f in files)


class HTTPServerConfig(_Section):
    """`http_server_config`; `http2` is accepted and ignored (aiohttp serves HTTP/1.1)."""

    http2: bool = True
    headers: dict[str, str] = {}

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if name not in _ALLOWED_HEADERS:
                raise ValueError(f"HTTP header {name!r} can not be configured")
            allowed = _ALLOWED_HEADERS[name]
            if allowed and header_value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        return value


class WebConfig(_Section):
    """The whole web config file. Hashes are `SecretStr`, so repr() hides them."""

    tls_server_config: TLSServerConfig = TLSServerConfig()
    http_server_config: HTTPServerConfig = HTTPServerConfig()
    basic_auth_users: dict[str, SecretStr] = {}
    auth_excluded_paths: tuple[str, ...] = ()

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in value.items():
            if not _BCRYPT_HASH.fullmatch(hashed.get_secret_value()):
                raise ValueError(f"the value for user {user!r} is not a bcrypt hash")
        return value


def load_web_config(path: Path, *, allow_empty: bool = True) -> WebConfig:
    """Read and validate a web config file; relative paths in it are relative to its directory.

    An empty file (or only comments) means no TLS and no auth, as in exporter-toolkit,
    unless `allow_empty` is false: a reload refuses it, as a file being rewritten in
    place reads empty for a moment. Raises WebConfigError, whose message never
    contains a password or a hash.
    """
    data = _parse_yaml(path, _read_text(path))
    if data is None and not allow_empty:
        raise WebConfigError(path, "", "the file is empty")
    return _validate(path, data)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = f"cannot read the file: {_describe(exc)}"
    raise WebConfigError(path, "", reason)


# The next two raise outside their `except` block, so that no chained exception
# carries PyYAML's quote of the offending line or pydantic's input values.


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = _describe_yaml_error(exc)
    raise WebConfigError(path, "", reason)


def _validate(path: Path, data: object) -> WebConfig:
    try:
        return WebConfig.model_validate(data or {}, context={"base_dir": path.parent})
    except ValidationError as exc:
        key, reason = _describe_validation_error(exc)
    raise WebConfigError(path, key, reason)


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
            logger.warning(
                "basic_auth_refused",
                extra={
                    "reason": verdict.name.lower(),
                    "client": client,
                    "throttled": self._refused[Verdict.THROTTLED],
                    "busy": self._refused[Verdict.BUSY],
                },
            )
            self._refused = dict.fromkeys(self._refused, 0)
        return verdict


def _remember(cache: OrderedDict[bytes, None], key: bytes, size: int) -> None:
    cache[key] = None
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


class WebSecurity:
    """The web config in force: TLS for the listener, basic auth and headers for aiohttp.

    Wire it as `web.Application(middlewares=[security.middleware])` and
    `web.TCPSite(runner, host, port, ssl_context=security.ssl_context())`.
    """

    def __init__(
        self,
        path: Path,
        config: WebConfig,
        *,
        unauthenticated_paths: frozenset[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
        auth_limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
    ) -> None:
        self._path = path
        self._unauthenticated_paths = unauthenticated_paths
        self._check_interval_seconds = check_interval_seconds
        self._clock = clock
        self._auth = BasicAuthChecker(auth_limits, checkpw=checkpw, clock=clock)
        self._config = config
        self._tls_context = self._build_tls_context(config)
        self._fingerprint = _fingerprint(path, config)
        self._next_check = clock() + check_interval_seconds
        self._last_failure = ""

    @classmethod
    def from_file(
        cls,
        path: Path,
        *,
        unauthenticated_paths: frozenset[str] = DEFAULT_UNAUTHENTICATED_PATHS,
        check_interval_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
        auth_limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
    ) -> WebSecurity:
        """Load `path`; raises WebConfigError if the file or a file it names is unusable."""
        return cls(
            path,
            load_web_config(path),
            unauthenticated_paths=unauthenticated_paths,
            check_interval_seconds=check_interval_seconds,
            clock=clock,
            checkpw=checkpw,
            auth_limits=auth_limits,
        )

    @property
    def config(self) -> WebConfig:
        return self._config

    def ssl_context(self) -> ssl.SSLContext | None:
        """The context for the listening socket, or None when the file configures no TLS.

        Each handshake first checks the files for changes, then switches the
        connection to the newest context: new certificates, keys and client CAs
        apply to new connections without a restart. OpenSSL runs the callback for
        every ClientHello, with or without SNI.
        """
        return self._tls_context

    def reload_if_changed(self) -> bool:
        """Reload when the file or a file it names changed; True if a new config is in force.

        Checks (a few stat calls) at most once per check interval. A file that fails
        to load is logged once per distinct failure and retried at the next check.
        Fails closed: an empty file, or one that would turn basic auth or TLS off,
        is a failure too, so a truncated or half-written file never opens the door.
        """
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_interval_seconds
        fingerprint = _fingerprint(self._path, self._config)
        if fingerprint == self._fingerprint:
            return False
        try:
            config = load_web_config(self._path, allow_empty=False)
            _check_same_listener(self._path, self._config, config)
            _check_auth_stays_on(self._path, self._config, config)
            tls_context = self._build_tls_context(config)
        except WebConfigError as exc:
            self._report_failure(exc)
            return False
        self._config, self._tls_context = config, tls_context
        # Taken before loading, so a change made while loading is seen at the next
        # check; if the new file names other files, that check reloads once more.
        self._fingerprint = fingerprint
        self._last_failure = ""
        logger.info("web_config_reloaded", extra={"path": str(self._path)})
        return True

    def _report_failure(self, error: WebConfigError) -> None:
        """Log a failed reload once, not at every check until the file is fixed."""
        if str(error) == self._last_failure:
            return
        self._last_failure = str(error)
        # key and reason come from WebConfigError: redacted, never a password or hash.
        logger.error(
            "web_config_reload_failed",
            extra={
                "path": str(self._path),
                "key": error.key,
                "reason": error.reason,
                "kept": "previous config",
            },
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Enforce basic auth (except on unauthenticated paths) and add the configured headers."""
        self.reload_if_changed()
        headers = self._config.http_server_config.headers
        response: web.StreamResponse
        verdict = await self._authorize(request)
        if verdict is Verdict.ALLOW:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(headers)
                raise
        else:
            response = self._refusal(verdict)
        if not response.prepared:
            response.headers.update(headers)
        return response

    async def _authorize(self, request: web.Request) -> Verdict:
        users = self._config.basic_auth_users
        if not users:
            return Verdict.ALLOW
        path = request.path
        if path in self._unauthenticated_paths or path in self._config.auth_excluded_paths:
            return Verdict.ALLOW
        credentials = _basic_credentials(request.headers.get(hdrs.AUTHORIZATION))
        if credentials is None:
            return Verdict.DENY
        user, password = credentials
        return await self._auth.check(user, password, users, request.remote or "")

    def _refusal(self, verdict: Verdict) -> web.Response:
        headers = {
            Verdict.DENY: {hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}"'},
            Verdict.THROTTLED: {
                hdrs.RETRY_AFTER: str(math.ceil(self._auth.limits.client_failure_refill_seconds))
            },
            Verdict.BUSY: {hdrs.RETRY_AFTER: "1"},
        }[verdict]
        status = HTTPStatus(verdict.value)
        return web.Response(status=status, text=f"{status}: {status.phrase}", headers=headers)

    def _build_tls_context(self, config: WebConfig) -> ssl.SSLContext | None:
        context = _server_tls_context(self._path, config.tls_server_config)
        if context is not None:
            context.sni_callback = self._select_tls_context
        return context

    def _select_tls_context(
        self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        self.reload_if_changed()
        if self._tls_context is not None and connection.context is not self._tls_context:
            connection.context = self._tls_context


def _server_tls_context(path: Path, tls: TLSServerConfig) -> ssl.SSLContext | None:
    if not tls.enabled:
        return None
    assert tls.cert_file is not None  # checked by TLSServerConfig
    assert tls.key_file is not None
    for key, file in (
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
        ("client_ca_file", tls.client_ca_file),
    ):
        if file is not None and not os.path.isfile(file):
            raise WebConfigError(path, f"tls_server_config.{key}", f"{file} is not a file")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0 and 1.1; the file format still allows them.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    try:
        # A passphrase-protected key fails to load instead of prompting on stdin.
        context.load_cert_chain(tls.cert_file, tls.key_file, password=b"")
    except OSError as exc:
        reason = f"cannot load {tls.cert_file} with {tls.key_file}: {_describe(exc)}"
        raise WebConfigError(path, "tls_server_config.cert_file", reason) from None
    context.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    if tls.client_ca_file is not None and context.verify_mode != ssl.CERT_NONE:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except OSError as exc:
            reason = f"cannot load {tls.client_ca_file}: {_describe(exc)}"
            raise WebConfigError(path, "tls_server_config.client_ca_file", reason) from None
    openssl_names = [_CIPHER_SUITES[name] for name in tls.cipher_suites]
    ciphers = ":".join(name for name in openssl_names if name is not None)
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError:
            reason = "none of these cipher suites is available in this OpenSSL"
            raise WebConfigError(path, "tls_server_config.cipher_suites", reason) from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def _check_same_listener(path: Path, old: WebConfig, new: WebConfig) -> None:
    """Refuse a reload that changes what only a new listening socket could apply.

    OpenSSL fixes the client-certificate mode, protocol versions and options of a
    connection before the SNI callback can switch contexts; only certificates, keys
    and CAs follow the switch.
    """
    before, after = _listener_settings(old), _listener_settings(new)
    if before == after:
        return
    if before is None or after is None:
        raise WebConfigError(path, "tls_server_config", "turning TLS on or off needs a restart")
    changed = ", ".join(sorted(key for key in before if before[key] != after[key]))
    raise WebConfigError(path, "tls_server_config", f"changing {changed} needs a restart")


def _check_auth_stays_on(path: Path, old: WebConfig, new: WebConfig) -> None:
    """Refuse a reload that turns basic auth off; a restart can.

    `basic_auth_users:` with nothing after it is also what a half-written file looks like.
    """
    if old.basic_auth_users and not new.basic_auth_users:
        raise WebConfigError(path, "basic_auth_users", "turning basic auth off needs a restart")


def _listener_settings(config: WebConfig) -> dict[str, Any] | None:
    tls = config.tls_server_config
    if not tls.enabled:
        return None
    return tls.model_dump(exclude={"cert_file", "key_file", "client_ca_file"})


def _fingerprint(path: Path, config: WebConfig) -> tuple[tuple[int, int, int] | None, ...]:
    """Inode, size and mtime of the config file and the files it names (None if missing)."""
    tls = config.tls_server_config
    files = (path, tls.cert_file, tls.key_file, tls.client_ca_file)
    return tuple(_stat(file) for file in files if file is not None)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        result = os.stat(path)
    except OSError:
        return None
    return (result.st_ino, result.st_size, result.st_mtime_ns)


def _basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
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


def _describe(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    return exc.strerror or type(exc).__name__


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Position and problem only: str(exc) may quote the offending line."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return "invalid YAML"


def _describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """The first error's key and message, never the input value (a password or a hash).

    Pydantic's messages name the expected type or values, ours name keys and user
    names; WebConfigError masks a hash pasted where a key or name belongs.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=True)
    first = errors[0]
    key = ".".join(str(part) for part in first["loc"])
    error = first.get("ctx", {}).get("error")
    reason = str(error) if first["type"] == "value_error" and error else first["msg"]
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more errors)"
    return key, reason


def _redact(text: str) -> str:
    """Mask anything shaped like a bcrypt hash, e.g. a hash pasted where a user belongs."""
    return _BCRYPT_LIKE.sub("<redacted>", text)
