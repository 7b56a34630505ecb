"""exporter.web.security (and the web config file it loads) against real aiohttp servers on
127.0.0.1, with a trustme CA."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import socket
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import httpx
import pytest
import trustme
from aiohttp import web
from structlog.testing import capture_logs
from structlog.typing import EventDict

from exporter.web.basic_auth import DEFAULT_AUTH_LIMITS, BasicAuthLimits
from exporter.web.security import DEFAULT_UNAUTHENTICATED_PATHS, WebSecurity
from exporter.web.webconfig import WebConfigError, load_web_config

EXAMPLE = Path(__file__).parents[2] / "deploy" / "web-config.example.yml"

# Cost 4 keeps the suite fast; the code under test does not care about the cost.
ALICE_PASSWORD = "alice-s3cret-pw"
ALICE_HASH = bcrypt.hashpw(ALICE_PASSWORD.encode(), bcrypt.gensalt(4)).decode()
BOB_PASSWORD = "bob-s3cret-pw"
BOB_HASH = bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(4)).decode()

TLS_FILES = """
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
"""
MTLS_FILES = (
    TLS_FILES
    + """
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
"""
)
USERS_ALICE = f"""
basic_auth_users:
  alice: {ALICE_HASH}
"""
USERS_ALICE_BOB = USERS_ALICE + f"  bob: {BOB_HASH}\n"


class CountingCheckpw:
    """bcrypt.checkpw that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, password: bytes, hashed: bytes) -> bool:
        self.calls += 1
        return bcrypt.checkpw(password, hashed)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def web_dir(tmp_path: Path, ca: trustme.CA) -> Path:
    """A directory holding tls.crt, tls.key and ca.crt, as a Kubernetes TLS Secret does."""
    write_server_cert(tmp_path, ca.issue_cert("127.0.0.1", "localhost"))
    replace_file(tmp_path / "ca.crt", ca.cert_pem.bytes())
    return tmp_path


def write_server_cert(directory: Path, cert: trustme.LeafCert) -> None:
    replace_file(directory / "tls.crt", cert.cert_chain_pems[0].bytes())
    replace_file(directory / "tls.key", cert.private_key_pem.bytes())


def replace_file(path: Path, data: bytes) -> Path:
    """Replace the file atomically (a new inode), as kubelet and cert-manager do.

    An in-place rewrite of the same size within one filesystem timestamp tick would
    go unseen by a stat-based check.
    """
    staging = path.with_suffix(".tmp")
    staging.write_bytes(data)
    os.replace(staging, path)
    return path


def write_config(path: Path, text: str) -> Path:
    return replace_file(path, text.encode())


def logged(logs: list[EventDict], level: int) -> list[EventDict]:
    """The captured lines (`structlog.testing.capture_logs`) at `level` (`logging.ERROR`)
    or above: what a handler at that level would write."""
    levels = logging.getLevelNamesMapping()
    return [entry for entry in logs if levels[entry["log_level"].upper()] >= level]


def client_context(
    ca: trustme.CA, *, client_cert: trustme.LeafCert | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if client_cert is not None:
        client_cert.configure_cert(context)
    return context


@asynccontextmanager
async def serve(security: WebSecurity) -> AsyncIterator[str]:
    """A real aiohttp server with the security middleware and TLS context; yields its URL."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(middlewares=[security.middleware])
    app.router.add_get("/metrics", ok)
    app.router.add_get("/healthz", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    tls = security.ssl_context()
    try:
        # A backlog for the flood tests: hundreds of connections arrive at once.
        await web.SockSite(runner, sock, ssl_context=tls, backlog=1024).start()
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        sock.close()


async def get(
    url: str,
    *,
    verify: ssl.SSLContext | bool = False,
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    async with httpx.AsyncClient(verify=verify, auth=auth) as client:
        return await client.get(url)


async def peer_certificate(url: str, context: ssl.SSLContext) -> bytes:
    """The DER certificate the server presents to a client connecting to its IP (no SNI)."""
    port = int(url.rsplit(":", 1)[1])
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return bytes(ssl_object.getpeercert(binary_form=True))
    finally:
        writer.close()
        await writer.wait_closed()


def der(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


def security_for(
    path: Path,
    *,
    unauthenticated_paths: frozenset[str] = DEFAULT_UNAUTHENTICATED_PATHS,
    checkpw: Callable[[bytes, bytes], bool] = bcrypt.checkpw,
    auth_limits: BasicAuthLimits = DEFAULT_AUTH_LIMITS,
) -> WebSecurity:
    """WebSecurity that checks its files at every request and handshake."""
    return WebSecurity.from_file(
        path,
        unauthenticated_paths=unauthenticated_paths,
        check_interval_seconds=0,
        checkpw=checkpw,
        auth_limits=auth_limits,
    )


# --- TLS ---------------------------------------------------------------------


async def test_https_handshake_succeeds_with_a_client_trusting_the_ca(
    web_dir: Path, ca: trustme.CA
) -> None:
    security = security_for(write_config(web_dir / "web.yml", TLS_FILES))
    async with serve(security) as url:
        response = await get(f"{url}/metrics", verify=client_context(ca))
    assert url.startswith("https://")
    assert (response.status_code, response.text) == (200, "ok")


async def test_plain_http_when_the_file_configures_no_tls(tmp_path: Path) -> None:
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE))
    async with serve(security) as url:
        response = await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD))
    assert security.ssl_context() is None
    assert response.status_code == 200


@pytest.mark.parametrize("client", ["ca_signed", "none", "other_ca"])
async def test_require_and_verify_client_cert_accepts_only_ca_signed_clients(
    web_dir: Path, ca: trustme.CA, client: str
) -> None:
    security = security_for(write_config(web_dir / "web.yml", MTLS_FILES))
    client_cert = {
        "ca_signed": ca.issue_cert("client@example.com"),
        "none": None,
        "other_ca": trustme.CA().issue_cert("client@example.com"),
    }[client]
    context = client_context(ca, client_cert=client_cert)
    async with serve(security) as url:
        if client == "ca_signed":
            assert (await get(f"{url}/metrics", verify=context)).status_code == 200
        else:
            with pytest.raises(httpx.TransportError):
                await get(f"{url}/metrics", verify=context)


async def test_min_version_tls13_rejects_a_tls12_only_client(web_dir: Path, ca: trustme.CA) -> None:
    config = TLS_FILES + "  min_version: TLS13\n"
    security = security_for(write_config(web_dir / "web.yml", config))
    tls12_only = client_context(ca)
    tls12_only.maximum_version = ssl.TLSVersion.TLSv1_2
    async with serve(security) as url:
        with pytest.raises(httpx.ConnectError):
            await get(f"{url}/metrics", verify=tls12_only)
        assert (await get(f"{url}/metrics", verify=client_context(ca))).status_code == 200


async def test_cipher_suites_choose_the_tls12_cipher(web_dir: Path, ca: trustme.CA) -> None:
    config = TLS_FILES + "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"
    security = security_for(write_config(web_dir / "web.yml", config))
    tls12_only = client_context(ca)
    tls12_only.maximum_version = ssl.TLSVersion.TLSv1_2
    async with serve(security) as url:
        port = int(url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls12_only)
        cipher = writer.get_extra_info("cipher")
        writer.close()
        await writer.wait_closed()
    assert cipher[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


async def test_rotated_certificate_reaches_new_connections_that_send_no_sni(
    web_dir: Path, ca: trustme.CA
) -> None:
    security = security_for(write_config(web_dir / "web.yml", TLS_FILES))
    listener = security.ssl_context()
    assert listener is not None
    server_names: list[str | None] = []
    select = listener.sni_callback
    assert select is not None

    def recording(connection: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        server_names.append(name)
        select(connection, name, context)  # type: ignore[arg-type]

    listener.sni_callback = recording
    async with serve(security) as url:
        before = await peer_certificate(url, client_context(ca))
        renewed = ca.issue_cert("127.0.0.1", "localhost")
        write_server_cert(web_dir, renewed)
        after = await peer_certificate(url, client_context(ca))
    assert der(renewed) == after
    assert before != after
    assert server_names == [None, None]  # connecting to an IP sends no SNI


async def test_half_rotated_certificate_keeps_the_old_one_until_the_key_arrives(
    web_dir: Path, ca: trustme.CA
) -> None:
    original = (web_dir / "tls.crt").read_bytes()
    security = security_for(write_config(web_dir / "web.yml", TLS_FILES))
    renewed = ca.issue_cert("127.0.0.1")
    async with serve(security) as url:
        replace_file(web_dir / "tls.crt", renewed.cert_chain_pems[0].bytes())
        with capture_logs() as logs:
            during = await peer_certificate(url, client_context(ca))
        replace_file(web_dir / "tls.key", renewed.private_key_pem.bytes())
        after = await peer_certificate(url, client_context(ca))
    assert during == ssl.PEM_cert_to_DER_cert(original.decode())
    assert after == der(renewed)
    failed = logged(logs, logging.ERROR)[0]
    assert "web_config_reload_failed" == failed["event"]
    assert "tls_server_config.cert_file" == failed["key"]


async def test_rotated_client_ca_applies_to_new_connections(web_dir: Path, ca: trustme.CA) -> None:
    security = security_for(write_config(web_dir / "web.yml", MTLS_FILES))
    new_ca = trustme.CA()
    old_client = client_context(ca, client_cert=ca.issue_cert("client"))
    new_client = client_context(ca, client_cert=new_ca.issue_cert("client"))
    async with serve(security) as url:
        assert (await get(f"{url}/metrics", verify=old_client)).status_code == 200
        replace_file(web_dir / "ca.crt", new_ca.cert_pem.bytes())
        assert (await get(f"{url}/metrics", verify=new_client)).status_code == 200
        with pytest.raises(httpx.TransportError):
            await get(f"{url}/metrics", verify=old_client)


# --- basic auth and headers --------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "expected_status"),
    [
        (("alice", ALICE_PASSWORD), 200),
        (("alice", "wrong-password"), 401),
        (("mallory", ALICE_PASSWORD), 401),
        (("alice", "x" * 100), 401),  # bcrypt refuses passwords over 72 bytes
        (None, 401),
    ],
    ids=["right", "wrong_password", "unknown_user", "too_long", "missing"],
)
async def test_basic_auth(
    tmp_path: Path, auth: tuple[str, str] | None, expected_status: int
) -> None:
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE))
    async with serve(security) as url:
        response = await get(f"{url}/metrics", auth=auth)
    assert expected_status == response.status_code
    if expected_status == 401:
        assert response.headers["WWW-Authenticate"] == 'Basic realm="devin-exporter"'


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"alice:\xff\xfe").decode(),  # not UTF-8
        "Digest " + base64.b64encode(f"alice:{ALICE_PASSWORD}".encode()).decode(),
    ],
    ids=["bearer", "no_credentials", "not_base64", "no_colon", "not_utf8", "other_scheme"],
)
async def test_malformed_authorization_headers_get_401(tmp_path: Path, header: str) -> None:
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE))
    async with serve(security) as url, httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics", headers={"Authorization": header})
    assert response.status_code == 401


async def test_probe_paths_are_open_by_default(tmp_path: Path) -> None:
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE))
    async with serve(security) as url:
        assert (await get(f"{url}/healthz")).status_code == 200
        assert (await get(f"{url}/metrics")).status_code == 401


async def test_unauthenticated_paths_can_be_closed(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path, unauthenticated_paths=frozenset())
    async with serve(security) as url:
        assert (await get(f"{url}/healthz")).status_code == 401


async def test_auth_excluded_paths_from_the_file_are_open(tmp_path: Path) -> None:
    config = USERS_ALICE + "auth_excluded_paths: [/metrics]\n"
    security = security_for(write_config(tmp_path / "web.yml", config))
    async with serve(security) as url:
        assert (await get(f"{url}/metrics")).status_code == 200


async def test_same_credentials_are_bcrypt_checked_once(tmp_path: Path) -> None:
    checkpw = CountingCheckpw()
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE), checkpw=checkpw)
    async with serve(security) as url:
        first = await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD))
        second = await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD))
        assert checkpw.calls == 1
        await get(f"{url}/metrics", auth=("alice", "another-password"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert checkpw.calls == 2


async def test_unknown_users_cost_a_bcrypt_check_too(tmp_path: Path) -> None:
    """A decoy hash is checked, so timing does not tell which users exist."""
    checkpw = CountingCheckpw()
    security = security_for(write_config(tmp_path / "web.yml", USERS_ALICE), checkpw=checkpw)
    async with serve(security) as url:
        response = await get(f"{url}/metrics", auth=("mallory", ALICE_PASSWORD))
    assert (response.status_code, checkpw.calls) == (401, 1)


async def test_failure_cache_is_bounded_and_never_evicts_a_success(tmp_path: Path) -> None:
    checkpw = CountingCheckpw()
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(
        path, checkpw=checkpw, auth_limits=BasicAuthLimits(failure_cache_size=1)
    )
    passwords = (ALICE_PASSWORD, "wrong-1", "wrong-2", "wrong-1", ALICE_PASSWORD)
    async with serve(security) as url:
        statuses = [(await get(f"{url}/metrics", auth=("alice", p))).status_code for p in passwords]
    assert [200, 401, 401, 401, 200] == statuses
    assert 4 == checkpw.calls  # wrong-1 was evicted by wrong-2; alice's password never was


async def test_configured_headers_are_added_to_every_response(tmp_path: Path) -> None:
    config = (
        USERS_ALICE
        + """
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
"""
    )
    security = security_for(write_config(tmp_path / "web.yml", config))
    async with serve(security) as url:
        responses = [
            await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD)),
            await get(f"{url}/metrics"),
            await get(f"{url}/missing", auth=("alice", ALICE_PASSWORD)),
        ]
    assert [response.status_code for response in responses] == [200, 401, 404]
    for response in responses:
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


# --- reload ------------------------------------------------------------------


async def test_reload_picks_up_a_new_user_on_the_next_request(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path)
    async with serve(security) as url:
        assert (await get(f"{url}/metrics", auth=("bob", BOB_PASSWORD))).status_code == 401
        write_config(path, USERS_ALICE_BOB)
        assert (await get(f"{url}/metrics", auth=("bob", BOB_PASSWORD))).status_code == 200


async def test_invalid_new_file_keeps_the_old_config_and_logs_once(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path)
    broken = f"basic_auth_users:\n  bob: {BOB_PASSWORD}\n"  # a password where a hash belongs
    async with serve(security) as url:
        write_config(path, broken)
        with capture_logs() as logs:
            for _ in range(2):
                response = await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD))
                assert response.status_code == 200
    [failed] = logged(logs, logging.ERROR)
    assert "web_config_reload_failed" == failed["event"]
    assert (str(path), "basic_auth_users") == (failed["path"], failed["key"])
    assert "not a bcrypt hash" in failed["reason"]
    assert BOB_PASSWORD not in repr(logs)


def make_unreadable(path: Path) -> None:
    """A directory where the file was: unreadable even for root, unlike chmod 000."""
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (lambda path: write_config(path, ""), "(top level)", "the file is empty"),
        (lambda path: write_config(path, "# rewriting\n"), "(top level)", "the file is empty"),
        (
            lambda path: write_config(path, "basic_auth_users:\n"),
            "basic_auth_users",
            "turning basic auth off needs a restart",
        ),
        (make_unreadable, "(top level)", "cannot read the file: Is a directory"),
        (lambda path: replace_file(path, b"\xff\xfe"), "(top level)", "not UTF-8"),
        (lambda path: path.unlink(), "(top level)", "cannot read the file: No such file"),
        (lambda path: write_config(path, "basic_auth_users: [\n"), "(top level)", "invalid YAML"),
    ],
    ids=["empty", "comments_only", "users_emptied", "unreadable", "not_utf8", "deleted", "invalid"],
)
async def test_reload_of_a_bad_file_keeps_basic_auth_on_and_logs_why(
    tmp_path: Path,
    change: Callable[[Path], object],
    key: str,
    reason: str,
) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path)
    async with serve(security) as url:
        change(path)
        with capture_logs() as logs:
            anonymous = await get(f"{url}/metrics")
            alice = await get(f"{url}/metrics", auth=("alice", ALICE_PASSWORD))
    assert (401, 200) == (anonymous.status_code, alice.status_code)
    assert {"alice"} == set(security.config.basic_auth_users)
    [failed] = logged(logs, logging.ERROR)
    assert ("web_config_reload_failed", str(path), key) == (
        failed["event"],
        failed["path"],
        failed["key"],
    )
    assert reason in failed["reason"]
    assert ALICE_HASH not in repr(logs)


def test_fixed_file_after_a_refused_empty_one_reloads(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path)
    write_config(path, "")
    assert not security.reload_if_changed()
    write_config(path, USERS_ALICE_BOB)
    assert security.reload_if_changed()
    assert {"alice", "bob"} == set(security.config.basic_auth_users)


async def test_reload_is_logged_as_an_event_with_the_path(tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = security_for(path)
    write_config(path, USERS_ALICE_BOB)
    with capture_logs() as logs:
        assert security.reload_if_changed()
    [reloaded] = logged(logs, logging.INFO)
    assert ("web_config_reloaded", str(path)) == (reloaded["event"], reloaded["path"])
    assert BOB_HASH not in repr(logs)


async def test_file_is_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    now = [100.0]
    path = write_config(tmp_path / "web.yml", USERS_ALICE)
    security = WebSecurity.from_file(path, check_interval_seconds=5, clock=lambda: now[0])
    write_config(path, USERS_ALICE_BOB)
    assert not security.reload_if_changed()
    now[0] += 5
    assert security.reload_if_changed()
    assert {"alice", "bob"} == set(security.config.basic_auth_users)


@pytest.mark.parametrize(
    ("new_tls", "changed"),
    [
        (MTLS_FILES, "client_auth_type"),
        (TLS_FILES + "  min_version: TLS13\n", "min_version"),
        ("", "TLS on or off"),
    ],
)
def test_reload_refuses_what_only_a_restart_can_apply(
    web_dir: Path, new_tls: str, changed: str
) -> None:
    path = write_config(web_dir / "web.yml", TLS_FILES + USERS_ALICE)
    security = security_for(path)
    write_config(path, new_tls + USERS_ALICE_BOB)
    with capture_logs() as logs:
        assert not security.reload_if_changed()
    assert {"alice"} == set(security.config.basic_auth_users)
    failed = logged(logs, logging.ERROR)[0]
    assert ("web_config_reload_failed", "tls_server_config") == (failed["event"], failed["key"])
    assert changed in failed["reason"]
    assert "needs a restart" in failed["reason"]


# --- loading and errors --------------------------------------------------------


def test_paths_are_relative_to_the_config_directory(web_dir: Path) -> None:
    config = load_web_config(write_config(web_dir / "web.yml", MTLS_FILES))
    tls = config.tls_server_config
    assert (web_dir / "tls.crt", web_dir / "tls.key", web_dir / "ca.crt") == (
        tls.cert_file,
        tls.key_file,
        tls.client_ca_file,
    )


@pytest.mark.parametrize(
    "text",
    ["", "# nothing yet\n", "tls_server_config:\nbasic_auth_users:\n  # alice: ...\n"],
)
def test_empty_file_or_sections_mean_no_tls_and_no_auth(tmp_path: Path, text: str) -> None:
    security = security_for(write_config(tmp_path / "web.yml", text))
    assert security.ssl_context() is None
    assert security.config.basic_auth_users == {}


@pytest.mark.parametrize(
    ("client_auth_type", "verify_mode"),
    [
        ("NoClientCert", ssl.CERT_NONE),
        ("RequestClientCert", ssl.CERT_NONE),
        ("RequireAnyClientCert", ssl.CERT_REQUIRED),
        ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
    ],
)
def test_client_auth_type_maps_to_the_nearest_python_verify_mode(
    web_dir: Path, client_auth_type: str, verify_mode: ssl.VerifyMode
) -> None:
    ca_file = "" if client_auth_type == "NoClientCert" else "  client_ca_file: ca.crt\n"
    text = TLS_FILES + f"  client_auth_type: {client_auth_type}\n" + ca_file
    context = security_for(write_config(web_dir / "web.yml", text)).ssl_context()
    assert context is not None
    assert context.verify_mode == verify_mode


def test_repr_of_the_config_hides_the_hashes(tmp_path: Path) -> None:
    config = load_web_config(write_config(tmp_path / "web.yml", USERS_ALICE))
    assert ALICE_HASH not in repr(config)
    assert ALICE_HASH not in str(config)
    assert "alice" in repr(config)


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (f"basic_auth_users:\n  alice: {ALICE_PASSWORD}\n", "basic_auth_users", "bcrypt"),
        (f"basic_auth_users:\n  {ALICE_HASH}: alice\n", "basic_auth_users", "bcrypt"),
        (f"basic_auth_users: {{alice: {ALICE_HASH}, password: {ALICE_PASSWORD}\n", "", "YAML"),
        (f"basic_auth_user:\n  alice: {ALICE_HASH}\n", "basic_auth_user", "not permitted"),
        ("http_server_config:\n  headers:\n    X-Custom: value\n", "headers", "X-Custom"),
        ("tls_server_config:\n  min_version: TLS14\n", "min_version", "TLS13"),
        ("tls_server_config:\n  cert_file: tls.crt\n", "tls_server_config", "key_file"),
        ("tls_server_config:\n  key: inline\n", "tls_server_config", "inline"),
        (TLS_FILES + "  client_ca_file: ca.crt\n", "tls_server_config", "client_auth_type"),
        (TLS_FILES + "  client_auth_type: RequireAndVerifyClientCert\n", "", "client_ca_file"),
        (TLS_FILES + "  cipher_suites: [TLS_MADE_UP]\n", "cipher_suites", "TLS_MADE_UP"),
        ("tls_server_config:\n  cert_file: missing.crt\n  key_file: tls.key\n", "cert_file", ""),
        (MTLS_FILES.replace("ca.crt", "tls.key"), "client_ca_file", ""),
    ],
    # By key and reason: the texts hold a hash salted afresh in each process, and parallel
    # workers must collect the same test ids.
    ids=lambda value: None if "\n" not in str(value) else "file",
)
def test_bad_file_at_startup_names_file_and_key_but_no_secret(
    web_dir: Path, text: str, key: str, reason: str
) -> None:
    path = write_config(web_dir / "web.yml", text)
    with pytest.raises(WebConfigError) as caught:
        WebSecurity.from_file(path)
    message = str(caught.value)
    everything = "".join(traceback.format_exception(caught.value))
    assert str(path) in message
    assert key in caught.value.key
    assert reason in caught.value.reason
    for secret in (ALICE_PASSWORD, ALICE_HASH):
        assert secret not in everything


@pytest.mark.parametrize("secret", [ALICE_PASSWORD, ALICE_HASH], ids=["password", "hash"])
@pytest.mark.parametrize(
    "template",
    [
        "basic_auth_users: {v}\n",
        "basic_auth_users:\n  alice: [{v}]\n",
        "basic_auth_users:\n  alice: '{v}'\n  bob: '{v}x'\n",
        "tls_server_config:\n  min_version: '{v}'\n",
        "tls_server_config:\n  client_auth_type: '{v}'\n",
        "tls_server_config:\n  prefer_server_cipher_suites: '{v}'\n",
        "tls_server_config:\n  curve_preferences: ['{v}']\n",
        "http_server_config:\n  headers:\n    X-Frame-Options: '{v}'\n",
        "http_server_config:\n  http2: '{v}'\n",
        "auth_excluded_paths: [{{a: '{v}'}}]\n",
    ],
)
def test_validation_errors_never_quote_the_input_value(
    tmp_path: Path, template: str, secret: str
) -> None:
    """A value is never quoted back, whatever the key; keys and user names may be."""
    path = write_config(tmp_path / "web.yml", template.format(v=secret))
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    assert secret not in "".join(traceback.format_exception(caught.value))


async def test_non_ascii_passwords_are_utf8(tmp_path: Path) -> None:
    """A UTF-8 password (what browsers and Prometheus send) matches its bcrypt hash."""
    hashed = bcrypt.hashpw("pässwörd".encode(), bcrypt.gensalt(4)).decode()
    security = security_for(
        write_config(tmp_path / "web.yml", f"basic_auth_users:\n  jürgen: {hashed}\n")
    )
    credentials = base64.b64encode("jürgen:pässwörd".encode()).decode()
    async with serve(security) as url, httpx.AsyncClient() as client:
        response = await client.get(
            f"{url}/metrics", headers={"Authorization": f"Basic {credentials}"}
        )
    assert 200 == response.status_code


def test_missing_file_is_a_web_config_error(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="cannot read"):
        load_web_config(tmp_path / "absent.yml")


# --- the example file ----------------------------------------------------------


@pytest.fixture
def example_dir(web_dir: Path) -> Path:
    """The example next to generated certificates, as in a deployment's volume."""
    shutil.copy(EXAMPLE, web_dir / "web-config.yml")
    return web_dir


def test_example_loads(example_dir: Path) -> None:
    security = WebSecurity.from_file(example_dir / "web-config.yml")
    assert security.ssl_context() is not None
    assert list(security.config.basic_auth_users) == ["prometheus"]


@pytest.mark.prometheus
def test_promtool_accepts_the_example(example_dir: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required under CI")
        pytest.skip("promtool not installed")
    result = subprocess.run(
        [promtool, "check", "web-config", str(example_dir / "web-config.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_password_hash_is_a_real_bcrypt_hash() -> None:
    hashed = load_web_config(EXAMPLE).basic_auth_users["prometheus"].get_secret_value()
    assert not bcrypt.checkpw(b"prometheus", hashed.encode())
