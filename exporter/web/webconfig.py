"""TLS, basic auth and response headers from a Prometheus `--web.config.file`.

The file format is the one of prometheus/exporter-toolkit (what every Go exporter
accepts); docs/web-config.md says what is supported here and what is ignored.

The file and the certificate files it names are watched: a change is picked up by
the next request or TLS handshake. A change that does not load keeps the previous
configuration in force and is logged as `web_config_reload_failed`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
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


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; relative paths in it are relative to its directory.

    Raises WebConfigError, whose message never contains a password or a hash.
    """
    data = _parse_yaml(path, _read_text(path))
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
        cache_size: int = 100,
    ) -> None:
        self._path = path
        self._unauthenticated_paths = unauthenticated_paths
        self._check_interval_seconds = check_interval_seconds
        self._clock = clock
        self._checkpw = checkpw
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self._cache_salt = secrets.token_bytes(16)
        self._bcrypt_lock = asyncio.Lock()
        self._decoy_hashes: dict[int, bytes] = {}
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
        cache_size: int = 100,
    ) -> WebSecurity:
        """Load `path`; raises WebConfigError if the file or a file it names is unusable."""
        return cls(
            path,
            load_web_config(path),
            unauthenticated_paths=unauthenticated_paths,
            check_interval_seconds=check_interval_seconds,
            clock=clock,
            checkpw=checkpw,
            cache_size=cache_size,
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
        """
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_interval_seconds
        fingerprint = _fingerprint(self._path, self._config)
        if fingerprint == self._fingerprint:
            return False
        try:
            config = load_web_config(self._path)
            _check_same_listener(self._path, self._config, config)
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
            extra={"path": str(self._path), "key": error.key, "reason": error.reason},
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Enforce basic auth (except on unauthenticated paths) and add the configured headers."""
        self.reload_if_changed()
        headers = self._config.http_server_config.headers
        response: web.StreamResponse
        if await self._authorized(request):
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                exc.headers.update(headers)
                raise
        else:
            response = web.Response(
                status=401,
                text="401: Unauthorized",
                headers={hdrs.WWW_AUTHENTICATE: f'Basic realm="{REALM}"'},
            )
        if not response.prepared:
            response.headers.update(headers)
        return response

    async def _authorized(self, request: web.Request) -> bool:
        users = self._config.basic_auth_users
        if not users:
            return True
        path = request.path
        if path in self._unauthenticated_paths or path in self._config.auth_excluded_paths:
            return True
        credentials = _basic_credentials(request.headers.get(hdrs.AUTHORIZATION))
        if credentials is None:
            return False
        user, password = credentials
        return await self._check_password(user, password, users)

    async def _check_password(
        self, user: bytes, password: bytes, users: Mapping[str, SecretStr]
    ) -> bool:
        """bcrypt-check once per (user, password, hash), then answer from a bounded cache.

        Unknown users are checked against a decoy hash of the highest configured
        cost, so their answer takes as long. bcrypt runs in a thread, one at a time.
        """
        hashed = _constant_time_lookup(users, user)
        candidate = hashed if hashed is not None else await self._decoy_hash(users)
        key = self._cache_key(user, password, candidate)
        known = self._cache.get(key)
        if known is None:
            async with self._bcrypt_lock:
                known = self._cache.get(key)  # another request may have just checked it
                if known is None:
                    matches = await asyncio.to_thread(self._verify, password, candidate)
                    known = matches and hashed is not None
                    self._cache[key] = known
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return known

    def _verify(self, password: bytes, hashed: bytes) -> bool:
        try:
            return self._checkpw(password, hashed)
        except ValueError:  # bcrypt refuses passwords over 72 bytes
            return False

    async def _decoy_hash(self, users: Mapping[str, SecretStr]) -> bytes:
        cost = max(int(hashed.get_secret_value()[4:6]) for hashed in users.values())
        if cost not in self._decoy_hashes:
            salt = bcrypt.gensalt(cost)
            self._decoy_hashes[cost] = await asyncio.to_thread(bcrypt.hashpw, _DECOY_PASSWORD, salt)
        return self._decoy_hashes[cost]

    def _cache_key(self, user: bytes, password: bytes, hashed: bytes) -> bytes:
        """A salted sha256 of the credentials, so no plaintext password stays in memory."""
        digest = hashlib.sha256(self._cache_salt)
        for part in (user, password, hashed):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.digest()

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
