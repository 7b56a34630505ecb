"""What a scrape costs an operator: the exporter's own share of the series, and its HELP text."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from conftest import FIXED_NOW, Clock, Demo, running_exporter, wait_until
from prometheus_client.parser import text_string_to_metric_families

from exporter import main
from exporter.demo.account import DemoAccount
from exporter.demo.app import DemoAPI
from exporter.web.listener import listen

ORGANIZATIONS = 100
# The exporter's own series (`devin_exporter_*`) may be at most this share of a scrape
# polling the default endpoint groups, 100 organisations over the 4 default windows.
OWN_SHARE_MAX = 0.15
# A HELP line says what a family is; the long form is in docs/metrics.md.
HELP_MAX_CHARS = 330


def series_by_family(text: str) -> Counter[str]:
    """How many series (sample lines) each family has in a text exposition."""
    return Counter(
        {family.name: len(family.samples) for family in text_string_to_metric_families(text)}
    )


@pytest.fixture
async def hundred_orgs() -> AsyncIterator[Demo]:
    """The demo API with 100 organisations, its clock fixed."""
    account = DemoAccount.generate(ORGANIZATIONS)
    api = DemoAPI(account, clock=lambda: FIXED_NOW)
    listener = await listen(api.app(), "127.0.0.1:0")
    try:
        yield Demo(api, listener)
    finally:
        await listener.close()


@pytest.fixture
async def scraped_at_100_orgs(
    hundred_orgs: Demo, clock: Clock, http: httpx.AsyncClient
) -> tuple[main.Runtime, str]:
    """One scrape of the exporter after its first poll of 100 organisations (default
    groups: v3 org sessions and v2 enterprise sessions, 4 windows, and the billing cycle
    and ACU limits the enterprise admin key reads)."""
    settings = hundred_orgs.settings()
    assert ["1h", "24h", "7d", "30d"] == [w.label for w in settings.windows]
    async with running_exporter(settings, clock, ready=False) as runtime:
        await wait_until(lambda: runtime.poller.ready, within_seconds=90)
        text = (await http.get(f"{runtime.url}/metrics")).text
    return runtime, text


@pytest.mark.timeout(180)
async def test_own_series_are_at_most_15_percent_at_100_organisations_and_4_windows(
    scraped_at_100_orgs: tuple[main.Runtime, str],
) -> None:
    runtime, text = scraped_at_100_orgs
    assert ORGANIZATIONS == len({t.org for t in runtime.poller.targets if t.org})
    assert {
        "v3_org_sessions",
        "v2_enterprise_sessions",
        "v2_enterprise_consumption_cycles",
        "v2_enterprise_organizations",
    } == {t.endpoint for t in runtime.poller.targets}
    families = series_by_family(text)
    total = sum(families.values())
    own = sum(n for name, n in families.items() if name.startswith("devin_exporter_"))
    # A healthy poll has no error series at all: they appear with a target's first error.
    assert 0 == families["devin_exporter_poll_errors"]
    assert own / total <= OWN_SHARE_MAX, f"{own} of {total} series are the exporter's own"


async def test_every_family_has_its_own_short_help(
    running_everything: main.Runtime, http: httpx.AsyncClient
) -> None:
    """No sentence is repeated across families: what they share is said in docs/metrics.md."""
    text = (await http.get(f"{running_everything.url}/metrics")).text
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, flags=re.MULTILINE))
    assert helps
    assert [] == [name for name, help_text in helps.items() if not help_text.strip()]
    assert [] == [name for name, help_text in helps.items() if len(help_text) > HELP_MAX_CHARS]
    sentences = Counter(
        sentence
        for help_text in helps.values()
        for sentence in re.split(r"(?<=\.) ", help_text)
        if len(sentence) > 40
    )
    assert [] == [sentence for sentence, count in sentences.items() if count > 1]
