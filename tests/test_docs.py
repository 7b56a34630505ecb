"""docs/metrics.md is the public contract: it must match what the exporter serves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from conftest import ROOT
from scrape import families

from exporter import main
from exporter.config import load_settings

_ROW = re.compile(r"^\| `(devin_[a-z_]+)` \| (\w+) \| ([^|]*) \| ([^|]+) \|$", re.MULTILINE)


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    return {
        name: (kind, frozenset(re.findall(r"`(\w+)`", labels)))
        for name, kind, labels, _help in _ROW.findall(text)
    }


async def test_served_help_texts_begin_with_the_documented_ones(
    running_everything: main.Runtime, http: httpx.AsyncClient
) -> None:
    text = (await http.get(f"{running_everything.url}/metrics")).text
    served = dict(re.findall(r"^# HELP (\S+) (.*)$", text, flags=re.MULTILINE))
    rows = _ROW.findall((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"))
    for name, kind, _labels, help_text in rows:
        family = name.removesuffix("_total") if kind == "counter" else name
        served_help = served.get(name) or served.get(family) or ""
        assert served_help.startswith(help_text.strip()), name


async def test_docs_list_exactly_the_families_served_with_their_types_and_labels(
    running_everything: main.Runtime, http: httpx.AsyncClient
) -> None:
    served = families((await http.get(f"{running_everything.url}/metrics")).text)
    # A counter that has counted nothing yet (no field has gone missing) has no series to
    # show its labels: only its name and type can be checked.
    unlabelled = {name for name, (_, labels) in served.items() if not labels}
    expected = {
        name: (kind, frozenset() if name in unlabelled else labels)
        for name, (kind, labels) in documented().items()
    }
    assert expected == served
    assert {"devin_exporter_fields_missing_total"} <= unlabelled


def test_config_example_documents_every_top_level_section() -> None:
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    for key in (
        "devin:",
        "base_url:",
        "timeout:",
        "service_user_key_file:",
        "enterprise_key_file:",
        "organizations:",
        "windows:",
        "poll_interval:",
        "stale_after:",
        "web:",
        "listen_address:",
        "log:",
        "requests_per_second:",
        "max_attempts:",
        "sharding:",
        "endpoints:",
        "discovery:",
        "segments:",
        "enterprise_service_user_key_file:",
        "state:",
    ):
        assert key in example


def test_config_example_is_a_valid_config(tmp_path: Path) -> None:
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    for name in ("service-user.key", "enterprise.key", "payments.key"):
        (tmp_path / name).write_text("cog_example\n")
        example = example.replace(f"/etc/devin-exporter/{name}", str(tmp_path / name))
    path = tmp_path / "config.yaml"
    path.write_text(example)
    settings = load_settings(path)
    assert ["1h", "24h", "7d", "30d"] == [w.label for w in settings.windows]
    assert 2 == len(settings.organizations)


def test_the_generated_tables_of_the_docs_are_up_to_date() -> None:
    """docs/endpoints.md (from the endpoint table and the contract) and the table of
    docs/metrics.md (from a scrape of the demo) are written by `make docs`."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (0, "") == (result.returncode, result.stdout), "run make docs"
