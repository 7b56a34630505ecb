"""TLS contexts for the listener from a web config's `tls_server_config`."""

from __future__ import annotations

import os
import ssl
import warnings
from pathlib import Path
from typing import Any

from exporter.web.webconfig import (
    CIPHER_SUITES,
    TLS_VERSIONS,
    VERIFY_MODES,
    TLSServerConfig,
    WebConfig,
    WebConfigError,
    describe,
)


def server_context(path: Path, tls: TLSServerConfig) -> ssl.SSLContext | None:
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
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        # A passphrase-protected key fails to load instead of prompting on stdin.
        context.load_cert_chain(tls.cert_file, tls.key_file, password=b"")
    except OSError as exc:
        reason = f"cannot load {tls.cert_file} with {tls.key_file}: {describe(exc)}"
        raise WebConfigError(path, "tls_server_config.cert_file", reason) from None
    context.verify_mode = VERIFY_MODES[tls.client_auth_type]
    if tls.client_ca_file is not None and context.verify_mode != ssl.CERT_NONE:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except OSError as exc:
            reason = f"cannot load {tls.client_ca_file}: {describe(exc)}"
            raise WebConfigError(path, "tls_server_config.client_ca_file", reason) from None
    openssl_names = [CIPHER_SUITES[name] for name in tls.cipher_suites]
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


def check_same_listener(path: Path, old: WebConfig, new: WebConfig) -> None:
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
