"""The Prometheus `--web.config.file`: its format, read and validated.

The file format is the one of prometheus/exporter-toolkit (what every Go exporter
accepts); docs/web-config.md says what is supported here and what is ignored. Building
TLS contexts from it is `web.tls`, checking basic auth `web.basic_auth`, and keeping it
in force (and reloading it) `web.security`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
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
CIPHER_SUITES: Mapping[str, str | None] = {
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

TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# Python's ssl cannot accept a client certificate without verifying it, so Go's
# "request" and "require any" policies map to the nearest verifying mode;
# RequestClientCert never verified nor used the certificate, so it asks for none.
VERIFY_MODES: Mapping[str | None, ssl.VerifyMode] = {
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
            if name not in CIPHER_SUITES:
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
        verify_mode = VERIFY_MODES[self.client_auth_type]
        if self.client_ca_file is not None and self.client_auth_type in (None, "NoClientCert"):
            raise ValueError("client_ca_file is set but client_auth_type does not use it")
        if verify_mode != ssl.CERT_NONE and self.client_ca_file is None:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
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
        reason = f"cannot read the file: {describe(exc)}"
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


def describe(exc: OSError | UnicodeDecodeError) -> str:
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
