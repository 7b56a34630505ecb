"""The endpoint table of docs/endpoints.md, rendered from the table and the contract."""

from __future__ import annotations

from exporter.devin.spec import Contract
from exporter.devin.table import ACTIVE_USER_PERIODS, ROWS

# The two seed specs carry no x-reference; these are the pages they were cut from.
SEED_PAGES = {
    "/v3/organizations/{org_id}/metrics/sessions": (
        "https://docs.devin.ai/api-reference/v3/metrics/organizations-metrics-sessions"
    ),
    "/v2/enterprise/metrics/sessions": (
        "https://docs.devin.ai/api-reference/v2/consumption/sessions-metrics"
    ),
}


def endpoints_table() -> str:
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
