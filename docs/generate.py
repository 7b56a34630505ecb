"""Write the generated tables of the docs: `make docs` (or `python docs/generate.py`).

- docs/endpoints.md, between its `endpoints-table` markers: one line per row of the
  endpoint table, with its permission in every spelling and its contract page;
- docs/metrics.md, between its `metrics-table` markers: every family the exporter serves
  with every endpoint group on against the demo Devin API, with its type, labels and HELP.

`--check` writes nothing and exits 1 when a table is out of date (tests/test_docs.py
runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent

# The two seed specs carry no x-reference; these are the pages they were cut from.
SEED_PAGES = {
    "/v3/organizations/{org_id}/metrics/sessions": (
        "https://docs.devin.ai/api-reference/v3/metrics/organizations-metrics-sessions"
    ),
    "/v2/enterprise/metrics/sessions": (
        "https://docs.devin.ai/api-reference/v2/consumption/sessions-metrics"
    ),
}


def endpoints_table(current: str) -> str:
    from exporter.devin.spec import Contract
    from exporter.devin.table import ACTIVE_USER_PERIODS, ROWS

    contract = Contract.load()
    lines = [
        "| endpoint | path | key | permission | group | shape | twins | reference |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        operation = contract.operation(row.path.replace("{period}", ACTIVE_USER_PERIODS[0]))
        assert operation is not None, row.name
        page = (operation.references or [SEED_PAGES[operation.path]])[0]
        twins = ", ".join(f"`{t}`" for t in (row.twin, row.v2_twin) if t) or "-"
        lines.append(
            f"| `{row.name}` | `{row.path}` | {row.key} | {row.permissions} | "
            f"{row.group or '-'} | {row.shape} | {twins} | {page} |"
        )
    return "\n".join(lines) + "\n"


def metrics_table(current: str) -> str:
    """Every family of one poll of the demo API with every group on: its type, HELP and
    labels as served. Rows keep the order of the `current` table (new families follow, in
    the order served), and so do a row's labels while they name the same set (or a
    superset, for a counter that has counted nothing yet and so shows no labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    documented = {
        cells[0].strip("` "): (index, re.findall(r"`(\w+)`", cells[2]))
        for index, line in enumerate(current.splitlines()[2:])
        if len(cells := line.strip("|").split(" | ")) == 4
    }
    rows: list[tuple[tuple[int, int], str]] = []
    text = asyncio.run(_scrape_everything())
    for served, family in enumerate(text_string_to_metric_families(text)):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        labels = list(dict.fromkeys(k for s in family.samples for k in s.labels if k != "le"))
        index, known = documented.get(name, (len(documented), []))
        if set(labels) <= set(known):
            labels = known
        shown = ", ".join(f"`{label}`" for label in labels)
        line = f"| `{name}` | {family.type} | {shown} | {family.documentation} |"
        rows.append(((index, served), line))
    header = ["| name | type | labels | help |", "|---|---|---|---|"]
    return "\n".join(header + [line for _, line in sorted(rows)]) + "\n"


async def _scrape_everything() -> str:
    """One poll of the demo API with every endpoint group, rendered as a scrape would."""
    from exporter import main
    from exporter.config import EndpointsSettings, load_settings
    from exporter.demo.account import DemoAccount
    from exporter.demo.app import DemoAPI
    from exporter.web.listener import listen

    fixed_now = 1_790_000_000.0
    account = DemoAccount.generate(3, extra_origins=["github"])
    demo = await listen(DemoAPI(account, clock=lambda: fixed_now).app(), "127.0.0.1:0")
    try:
        settings = load_settings(
            None,
            devin={
                "base_url": demo.url,
                "service_user_key": account.service_user_key,
                "enterprise_key": account.enterprise_key,
                "enterprise_service_user_key": account.enterprise_service_user_key,
                "requests_per_second": 1000,
            },
            organizations=[{"id": o.id, "name": o.name} for o in account.orgs],
            endpoints={group: {"enabled": True} for group in EndpointsSettings.model_fields},
            web={"listen_address": "127.0.0.1:0"},
        )
        async with main.http_client(settings) as client:
            runtime = main.build(settings, client, clock=lambda: fixed_now)
            await runtime.poller.poll_all()
            head, tail = await runtime.exposition.body(openmetrics=False, gzip=False)
            await runtime.exposition.close()
            return (head + tail).decode()
    finally:
        await demo.close()


TABLES = (
    (DOCS / "endpoints.md", "endpoints-table", endpoints_table),
    (DOCS / "metrics.md", "metrics-table", metrics_table),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is out of date")
    check = parser.parse_args().check
    stale = []
    for path, marker, render in TABLES:
        text = path.read_text(encoding="utf-8")
        start = text.index(f"<!-- {marker}:start -->\n") + len(f"<!-- {marker}:start -->\n")
        end = text.index(f"<!-- {marker}:end -->")
        table = render(text[start:end])
        if text[start:end] == table:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text[:start] + table + text[end:], encoding="utf-8")
    if stale:
        print(("out of date: " if check else "wrote: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
