"""Property tests: hostile API bodies and config files never escape as anything but our errors.

Whatever Devin (or something posing as it) sends, the models raise only ValidationError and
the client only DevinAPIError; whatever YAML an operator writes, `load_settings` raises only
ConfigError. No message ever carries a key.

The parametrized tests beside the properties pin the bugs these properties found (huge
counts, deeply nested bodies, non-ASCII digits, non-string and deeply nested YAML).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.utils import floatToGoString
from pydantic import SecretStr, ValidationError

from exporter.config import ConfigError, load_settings
from exporter.devin.client import DevinClient
from exporter.devin.errors import REASONS, DevinAPIError
from exporter.devin.models import KNOWN_ORIGINS, KNOWN_SIZES, EnterpriseSessions, SessionMetrics
from exporter.devin.retries import RetryPolicy, parse_retry_after
from exporter.devin.table import ENDPOINTS

SECRET = "cog_Pr0pErTy-t3st-s3cret-k3y_do-not-leak"
ENTERPRISE_SECRET = "apk_user_Pr0pErTy-t3st-3nterpr1se-k3y"
SECRETS = (SECRET, ENTERPRISE_SECRET)

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# JSON values of every shape, and a few that JSON parsers treat specially.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities become the non-standard tokens NaN / Infinity
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)

# Stand-ins replaced by raw tokens after json.dumps: numbers no JSON encoder writes.
_RAW = {
    "\x00raw:huge": "1" + "0" * 400,
    "\x00raw:exp": "1e999",
    "\x00raw:negexp": "-1e999",
    "\x00raw:nan": "NaN",
    "\x00raw:neg-zero": "-0",
    "\x00raw:frac": "0.00000000000000000000001",
}
adversarial_values = (
    st.sampled_from(
        [
            -1,
            -(2**63),
            2**63,
            2**64,
            10**30,
            "12",
            "NaN",
            "Infinity",
            "-0",
            "1e309",
            "",
            True,
            False,
            None,
            [],
            {},
            1.5,
            -0.0,
            *_RAW,
        ]
    )
    | json_values
)
count_keys = st.sampled_from(
    [*KNOWN_ORIGINS, *KNOWN_SIZES, "", "x" * 65, "é", "🚀", "\u202e", "a\nb"]
) | st.text(max_size=70)


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    counts = st.integers(min_value=0, max_value=10**6)
    return {
        "sessions_created_count": draw(counts),
        "sessions_created_by_size": draw(st.dictionaries(st.sampled_from(KNOWN_SIZES), counts)),
        "sessions_created_by_origin": draw(
            st.dictionaries(st.sampled_from([*KNOWN_ORIGINS, "github"]), counts)
        ),
        "sessions_created_with_playbook_count": draw(counts),
        "sessions_created_with_search_count": draw(counts),
        "sessions_with_merged_prs_count": draw(counts),
        "sessions_with_merged_prs_by_size": draw(
            st.dictionaries(st.sampled_from(KNOWN_SIZES), counts)
        ),
        "avg_acus_per_session": draw(st.floats(min_value=0, max_value=1e6)),
    }


VALID_BODY: dict[str, Any] = {
    "sessions_created_count": 3,
    "sessions_created_by_size": {"s": 3},
    "sessions_created_by_origin": {"slack": 3},
    "sessions_created_with_playbook_count": 1,
    "sessions_created_with_search_count": 1,
    "sessions_with_merged_prs_count": 1,
    "sessions_with_merged_prs_by_size": {"s": 1},
    "avg_acus_per_session": 2.5,
}


def nest(depth: int) -> str:
    """A stand-in for `depth` nested lists, too deep for json.dumps to write itself."""
    return f"\x00nest:{depth}"


def encode(value: Any, *, ascii_only: bool = True) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only)
    for stand_in, raw in _RAW.items():
        text = text.replace(json.dumps(stand_in, ensure_ascii=ascii_only), raw)
    text = re.sub(r'"\\u0000nest:(\d+)"', lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)
    return text.encode()


@st.composite
def mutated_bodies(draw: st.DrawFn, *, deep: bool = True) -> bytes:
    """A valid SessionMetrics body with one to three things wrong, then maybe cut short."""
    body: dict[str, Any] = draw(valid_bodies())
    fields = sorted(body)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        field = draw(st.sampled_from(fields))
        how = draw(
            st.sampled_from(
                ["replace", "delete", "count", "key", "many-keys", "unicode-field", "nest"]
            )
        )
        if how == "replace":
            body[field] = draw(adversarial_values)
        elif how == "delete":
            body.pop(field, None)
        elif how in ("count", "key", "many-keys") and isinstance(body.get(field), dict):
            counts = body[field]
            if how == "count":
                counts[draw(count_keys)] = draw(adversarial_values)
            elif how == "key":
                counts[draw(count_keys)] = draw(st.integers(min_value=0, max_value=10))
            else:
                counts.update({f"origin_{i}": 1 for i in range(draw(st.integers(60, 200)))})
        elif how == "unicode-field":
            body[draw(st.text(min_size=1, max_size=10))] = draw(adversarial_values)
        elif deep:
            body[field] = nest(draw(st.integers(10, 5000)))
    raw = encode(body, ascii_only=draw(st.booleans()))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    return raw


any_json_bytes = json_values.map(encode)


# The models.


@FAST
@given(st.one_of(any_json_bytes, mutated_bodies(), st.binary(max_size=200)))
@example(b"")
@example(b"[" * 100_000 + b"]" * 100_000)
@example(encode({"sessions_created_count": nest(10_000)}))
def test_session_metrics_raise_only_validation_error(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        SessionMetrics.model_validate_json(raw)


@FAST
@given(
    st.one_of(
        any_json_bytes,
        st.builds(lambda v: encode({"sessions_count": v}), adversarial_values),
        st.binary(max_size=100),
    )
)
def test_enterprise_sessions_raise_only_validation_error(raw: bytes) -> None:
    with contextlib.suppress(ValidationError):
        EnterpriseSessions.model_validate_json(raw)


def exposition_values(metrics: SessionMetrics) -> list[float | int]:
    """The numbers a scrape shows; a null or absent field shows none."""
    scalars = [
        metrics.sessions_created_count,
        metrics.sessions_created_with_playbook_count,
        metrics.sessions_created_with_search_count,
        metrics.sessions_with_merged_prs_count,
        metrics.avg_acus_per_session,
    ]
    breakdowns = [
        metrics.sessions_created_by_origin,
        metrics.sessions_created_by_size,
        metrics.sessions_with_merged_prs_by_size,
    ]
    return [
        *(n for n in scalars if n is not None),
        *(n for counts in breakdowns if counts is not None for n in counts.values()),
    ]


@FAST
@given(mutated_bodies(deep=False))
@example(encode({**VALID_BODY, "sessions_created_count": "\x00raw:huge"}))
@example(encode({**VALID_BODY, "sessions_created_by_origin": {"slack": "\x00raw:huge"}}))
def test_whatever_the_model_accepts_can_be_exposed(raw: bytes) -> None:
    """A body that validates must render: every number fits a float exposition."""
    try:
        metrics = SessionMetrics.model_validate_json(raw)
    except ValidationError:
        return
    for number in exposition_values(metrics):
        floatToGoString(number)
    assert all(0 <= n for n in exposition_values(metrics))


# The client, over a mock transport.


def run_client(status: int, headers: dict[str, str], content: bytes, *, v2: bool) -> None:
    """One request through DevinClient; returns quietly on success."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, content=content)

    async def go() -> None:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(transport=transport, base_url="http://devin.test") as http:
            client = DevinClient(
                http,
                retry=RetryPolicy(
                    attempts=2,
                    initial_backoff_seconds=0.001,
                    max_backoff_seconds=0.001,
                    budget_seconds=0.01,
                ),
            )
            if v2:
                row = ENDPOINTS["v2_enterprise_sessions"]
                now = time.time()
                await client.fetch(row, SecretStr(ENTERPRISE_SECRET), row.call("", now, now))
            else:
                row = ENDPOINTS["v3_org_sessions"]
                await client.fetch(row, SecretStr(SECRET), row.call("org-a", 0, 1))

    asyncio.run(go())


def assert_no_secret(error: BaseException, secrets: tuple[str, ...] = SECRETS) -> None:
    printed = "".join(traceback.format_exception(error))
    for secret in secrets:
        for text in (str(error), repr(error), printed, getattr(error, "detail", "")):
            assert secret not in text


@st.composite
def echoing_bodies(draw: st.DrawFn) -> bytes:
    """Bodies that echo a key back: in a detail, a validation loc, a count key, anywhere."""
    secret = draw(st.sampled_from(SECRETS))
    value = draw(json_values)
    body = draw(
        st.sampled_from(
            [
                {"detail": f"key {secret} is not allowed"},
                {"detail": [{"loc": ["header", secret], "msg": f"bad {secret}", "type": "x"}]},
                {"sessions_created_by_origin": {secret: "many"}, "sessions_count": secret},
                {"sessions_count": -1, secret: value},
                {"detail": secret * 50},
                [secret, value],
                secret,
            ]
        )
    )
    return encode(body, ascii_only=draw(st.booleans()))


# Deeply nested error bodies have their own test below.
client_bodies = st.one_of(
    any_json_bytes, mutated_bodies(deep=False), echoing_bodies(), st.binary(max_size=200)
)
statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 422, 429, 500, 503])
# Delta-seconds, HTTP-dates and junk (non-ASCII digits have their own test below).
retry_after = st.one_of(
    st.integers(min_value=0, max_value=10**30).map(str),
    st.sampled_from(["", " ", "-1", "1.5", "Fri, 31 Dec 1999 23:59:59 GMT", "tomorrow", "0"]),
    st.text(alphabet=st.characters(max_codepoint=127, exclude_categories=["Cc"]), max_size=30),
)


@FAST
@given(statuses, st.none() | retry_after, client_bodies, st.booleans())
def test_client_raises_only_devin_api_errors_and_never_shows_a_key(
    status: int, retry: str | None, content: bytes, v2: bool
) -> None:
    headers = {"Retry-After": retry} if retry is not None else {}
    error: DevinAPIError | None = None
    try:
        run_client(status, headers, content, v2=v2)
    except DevinAPIError as err:
        error = err
    if error is not None:
        # The key this request carried; the client cannot know what another key looks like.
        assert_no_secret(error, (ENTERPRISE_SECRET if v2 else SECRET,))
        assert error.reason in REASONS


@pytest.mark.parametrize(("status", "depth"), [(400, 100_000), (422, 5_000), (503, 20_000)])
def test_a_deeply_nested_error_body_is_a_devin_api_error(status: int, depth: int) -> None:
    with pytest.raises(DevinAPIError):
        run_client(status, {}, b"[" * depth + b"]" * depth, v2=False)


@FAST
@given(st.text(max_size=40) | retry_after, st.floats(0, 4e9))
@example("Fri, 31 Dec 1999 23:59:59 GMT", 4e9)
@example("9" * 400, 0.0)
def test_parse_retry_after_ignores_junk(value: str, now: float) -> None:
    """Retry-After is parsed, or ignored: never an exception, never a negative wait."""
    seconds = parse_retry_after(value, now)
    assert seconds is None or 0 <= seconds


@pytest.mark.parametrize("value", ["²", "1²", "①"])
def test_a_non_ascii_digit_in_retry_after_is_ignored(value: str) -> None:
    """httpx decodes headers as latin-1, so "²" can arrive; it is no number of seconds."""
    assert parse_retry_after(value, 0.0) is None


# The config file.

SECRET_PLACES = ("devin.service_user_key", "devin.enterprise_key", "organizations.service_user_key")

junk = st.one_of(json_values, st.sampled_from(["1h", "5m", "0s", "-1h", "1h30m", "x", ".inf", ""]))
extra_keys = st.dictionaries(st.text(min_size=1, max_size=8), junk, max_size=2)
durations = st.sampled_from(["10ms", "1s", "30s", "5m", "1h", "0s", "1x", "", "7d", "1h30m"]) | junk


@st.composite
def config_dicts(draw: st.DrawFn, key_file: Path) -> dict[str, Any]:
    """Config-shaped dicts with random values and a key placed where keys go."""
    devin = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "base_url": st.sampled_from(["http://127.0.0.1:1", "ftp://x", ""]) | junk,
                "timeout": durations,
                "max_concurrency": st.integers(-5, 300) | junk,
                "requests_per_second": st.floats() | junk,
                "max_attempts": st.integers(-1, 20) | junk,
                "retry_initial_backoff": durations,
                "retry_max_backoff": durations,
                "service_user_key_file": st.sampled_from(
                    [str(key_file), str(key_file.parent / "missing.key"), str(key_file.parent)]
                ),
                "enterprise_key_file": st.sampled_from([str(key_file), "/nonexistent/key"]),
            },
        )
    )
    devin.update(draw(extra_keys))
    orgs = draw(
        st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["org-a", "org-b", "", "bad id!"]) | st.text(max_size=8)},
                optional={"name": junk, "service_user_key_file": st.just(str(key_file))},
            ),
            max_size=3,
        )
        | junk
    )
    document: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "windows": st.lists(durations, max_size=4) | junk,
                "poll_interval": durations,
                "stale_after": durations,
                "web": st.fixed_dictionaries(
                    {},
                    optional={
                        "listen_address": st.sampled_from([":9877", "127.0.0.1:0", "[::1]:99999"])
                        | junk
                    },
                )
                | junk,
                "log": st.fixed_dictionaries(
                    {}, optional={"level": junk | st.just("debug"), "format": junk}
                ),
            },
        )
    )
    document.update(draw(extra_keys))
    document["devin"] = devin
    document["organizations"] = orgs
    for place in draw(st.lists(st.sampled_from(SECRET_PLACES), min_size=1, max_size=3)):
        section, _, key = place.partition(".")
        secret = ENTERPRISE_SECRET if key == "enterprise_key" else SECRET
        if section == "devin":
            devin[key] = secret
        elif isinstance(orgs, list) and (entries := [o for o in orgs if isinstance(o, dict)]):
            draw(st.sampled_from(entries))[key] = secret
    return document


def load_and_check(path: Path) -> None:
    """load_settings raises only ConfigError, without a key in its message."""
    try:
        loaded = load_settings(path)
    except ConfigError as err:
        assert_no_secret(err)
        return
    for secret in SECRETS:
        assert secret not in repr(loaded)
        assert secret not in str(loaded.model_dump())


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("configs")
    (path / "key").write_text(SECRET + "\n")
    return path


@settings(FAST, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_config_dicts_raise_only_config_error_without_a_key(
    config_dir: Path, data: st.DataObject
) -> None:
    document = data.draw(config_dicts(config_dir / "key"))
    text = yaml.safe_dump(document, allow_unicode=data.draw(st.booleans()))
    path = config_dir / "config.yaml"
    path.write_text(text, encoding="utf-8")
    load_and_check(path)


yaml_tokens = st.sampled_from(
    [
        "devin",
        "organizations",
        "windows",
        "poll_interval",
        "web",
        "log",
        "timeout",
        "service_user_key",
        f"service_user_key: {SECRET}\n",
        f"  enterprise_key: {ENTERPRISE_SECRET}\n",
        "id",
        "name",
        "- ",
        ": ",
        "  ",
        "\n",
        "\n  ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "&a ",
        "*a",
        "!!str ",
        "!!int ",
        "!!binary ",
        "!!python/object:os.system ",
        "!custom ",
        "'",
        '"',
        "# ",
        "---\n",
        "...\n",
        "| ",
        "> ",
        "~",
        "null",
        "true",
        "1h",
        "5m",
        "-1",
        "1e400",
        ".nan",
        ".inf",
        "? ",
        "%YAML 1.2\n",
        "\t",
        "<<: *a\n",
    ]
)
yaml_ish = st.one_of(
    st.lists(yaml_tokens | st.text(max_size=4), max_size=40).map("".join),
    st.text(max_size=200),
)


@FAST
@given(text=yaml_ish)
def test_yaml_ish_text_raises_only_config_error_without_a_key(config_dir: Path, text: str) -> None:
    path = config_dir / "text.yaml"
    path.write_text(text, encoding="utf-8")
    load_and_check(path)


@pytest.mark.parametrize("text", ["1: 2\n", "true: 1\n", "2020-01-01: x\n", "null: 1\n"])
def test_non_string_top_level_keys_are_a_config_error(config_dir: Path, text: str) -> None:
    path = config_dir / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_settings(path)


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe d\x00e\x00", b"devin: {timeout: \xe9}\n"], ids=["utf-16", "latin-1"]
)
def test_a_config_that_is_not_utf8_is_a_config_error(config_dir: Path, raw: bytes) -> None:
    path = config_dir / "raw.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError):
        load_settings(path)


@pytest.mark.parametrize("depth", [2_000, 10_000])
def test_a_config_nested_too_deeply_is_a_config_error(config_dir: Path, depth: int) -> None:
    path = config_dir / "deep.yaml"
    path.write_bytes(b"a: " + b"[" * depth)
    with pytest.raises(ConfigError):
        load_settings(path)
