"""The state file: what a restart takes back, and every way a file is refused without harm."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fakes import H1, H24, INTERVAL, NOW, Clock, FakeDevin, make_poller, target
from structlog.testing import capture_logs

from exporter.devin.errors import DevinAPIError
from exporter.polling.poller import Poller
from exporter.polling.snapshot import fresh_samples
from exporter.polling.state import FORMAT, VERSION, StateStore, decode, encode, read

KEY = "cog_" + "s3cr3t" * 6


async def polled(*orgs: str, key: str = KEY) -> Poller:
    poller = make_poller(FakeDevin(), Clock(), *(target(o, key) for o in orgs))
    await poller.poll_all()
    return poller


def fresh_poller(*orgs: str, key: str = "cog_rotated") -> Poller:
    """The poller of the next run: same targets, maybe a rotated key, nothing polled."""
    clock = Clock()
    clock.now = NOW + 60
    return make_poller(FakeDevin(), clock, *(target(o, key) for o in orgs))


async def saved(tmp_path: Path, poller: Poller) -> Path:
    path = tmp_path / "state.json"
    assert StateStore(path, poller, clock=lambda: NOW + 1).save(poller.snapshot())
    return path


def created(poller: Poller) -> dict[tuple[str, str], tuple[Any, float]]:
    return {
        (t.org, w): (s.value.sessions_created_count, s.fetched_at)  # type: ignore[attr-defined]
        for (t, w), s in poller.samples.items()
    }


async def test_a_restart_takes_back_every_value_with_its_fetch_time(tmp_path: Path) -> None:
    before = await polled("org-a", "org-b")
    path = await saved(tmp_path, before)

    after = fresh_poller("org-a", "org-b")
    assert 4 == StateStore(path, after).restore()

    assert {
        ("org-a", "1h"): (3600, NOW),
        ("org-a", "24h"): (86400, NOW),
        ("org-b", "1h"): (3600, NOW),
        ("org-b", "24h"): (86400, NOW),
    } == created(after)
    state = after.states[target("org-a"), "1h"]
    assert (NOW, NOW, None) == (state.last_success, state.last_attempt, state.last_error)
    assert after.up(target("org-a"))
    assert not after.ready  # this run has polled nothing yet


async def test_the_latest_failure_comes_back_beside_the_last_good_value(tmp_path: Path) -> None:
    api, clock = FakeDevin(), Clock()
    before = make_poller(api, clock, target("org-a", KEY))
    await before.poll_all()
    api.errors["org-a"] = DevinAPIError("server_error", status=503)
    clock.now += INTERVAL
    await before.poll_all()
    after = fresh_poller("org-a")
    StateStore(await saved(tmp_path, before), after).restore()

    state = after.states[target("org-a"), "24h"]
    assert ("server_error", NOW, NOW + INTERVAL) == (
        state.last_error,
        state.last_success,
        state.last_attempt,
    )
    assert NOW == after.samples[target("org-a"), "24h"].fetched_at
    assert not after.up(target("org-a"))


async def test_a_restored_sample_goes_stale_as_if_never_restarted(tmp_path: Path) -> None:
    after = fresh_poller("org-a")
    StateStore(await saved(tmp_path, await polled("org-a")), after).restore()
    stale_after = 3 * INTERVAL + 60  # above the floor of three polls
    assert 2 == len(fresh_samples(after.samples, NOW + stale_after, stale_after))
    assert {} == fresh_samples(after.samples, NOW + stale_after + 1, stale_after)


async def test_the_file_holds_no_key(tmp_path: Path) -> None:
    path = await saved(tmp_path, await polled("org-a", "org-b"))
    text = path.read_text(encoding="utf-8")
    assert KEY not in text
    assert "s3cr3t" not in text
    assert {"format": FORMAT, "version": VERSION} == {
        k: v for k, v in json.loads(text).items() if k in ("format", "version")
    }


async def test_targets_and_windows_no_longer_configured_are_left_out(tmp_path: Path) -> None:
    path = await saved(tmp_path, await polled("org-a", "org-gone"))
    after = fresh_poller("org-a", "org-new")
    after.reconfigure(list(after.targets), [H1])  # 24h is no longer a window
    assert 1 == StateStore(path, after).restore()
    assert {("org-a", "1h"): (3600, NOW)} == created(after)


async def test_saving_replaces_the_file_whole_and_leaves_no_temporary_file(
    tmp_path: Path,
) -> None:
    poller = await polled("org-a")
    path = await saved(tmp_path, poller)
    first = path.read_bytes()
    poller.reconfigure(list(poller.targets), [H1, H24])
    await poller.poll_all()
    assert StateStore(path, poller).save(poller.snapshot())
    assert [path.name] == os.listdir(tmp_path)
    assert first != path.read_bytes()
    assert decode(path.read_bytes()).windows


async def test_a_save_that_cannot_write_is_logged_and_not_raised(tmp_path: Path) -> None:
    poller = await polled("org-a")
    store = StateStore(tmp_path / "missing" / "state.json", poller)
    with capture_logs() as logs:
        assert not store.save(poller.snapshot())
    assert ["state_not_saved"] == [e["event"] for e in logs]


async def test_save_if_changed_writes_only_after_a_change(tmp_path: Path) -> None:
    poller = await polled("org-a")
    path = tmp_path / "state.json"
    store = StateStore(path, poller)
    await store.save_if_changed()
    written = path.stat().st_mtime_ns
    path.write_bytes(b"left alone")
    await store.save_if_changed()  # nothing changed since: the file is not touched
    assert b"left alone" == path.read_bytes()
    await poller.poll_all()
    await store.save_if_changed()
    assert path.stat().st_mtime_ns >= written
    assert decode(path.read_bytes()).windows


BAD_FILES = {
    "corrupt": (b'{"format": "devin-exporter-state", "vers', "not JSON, or not an object"),
    "foreign_version": (
        json.dumps({"format": FORMAT, "version": VERSION + 1, "windows": "anything"}).encode(),
        f"version {VERSION + 1} is not {VERSION}",
    ),
    "not_ours": (json.dumps({"groups": []}).encode(), "not a devin-exporter state file"),
    "wrong_shape": (
        json.dumps(
            {"format": FORMAT, "version": VERSION, "written_at": NOW, "windows": [{"org": 1}]}
        ).encode(),
        "windows.0.endpoint: Field required",
    ),
    "a_list": (b"[]", "not JSON, or not an object"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
async def test_a_bad_file_is_logged_and_ignored(tmp_path: Path, name: str) -> None:
    data, reason = BAD_FILES[name]
    path = tmp_path / "state.json"
    path.write_bytes(data)
    poller = fresh_poller("org-a")
    with capture_logs() as logs:
        assert 0 == StateStore(path, poller).restore()
    assert [("state_ignored", reason)] == [(e["event"], e.get("reason")) for e in logs]
    assert {} == poller.samples


async def test_an_unreadable_file_is_logged_and_ignored(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.mkdir()  # reading a directory fails, even as root
    with capture_logs() as logs:
        assert read(path) is None
    assert [("state_ignored", "unreadable")] == [(e["event"], e["reason"]) for e in logs]


async def test_no_file_yet_is_a_first_start_not_a_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert 0 == StateStore(tmp_path / "state.json", fresh_poller("org-a")).restore()
    assert [("state_absent", "info")] == [(e["event"], e["log_level"]) for e in logs]


async def test_a_value_that_no_longer_fits_its_model_is_skipped(tmp_path: Path) -> None:
    path = await saved(tmp_path, await polled("org-a"))
    document = json.loads(path.read_text(encoding="utf-8"))
    document["windows"][0]["value"]["sessions_created_count"] = -1
    path.write_text(json.dumps(document), encoding="utf-8")
    after = fresh_poller("org-a")
    assert 1 == StateStore(path, after).restore()


def test_encode_skips_targets_never_polled() -> None:
    poller = make_poller(FakeDevin(), Clock(), target("org-a"))
    assert [] == decode(encode(poller.snapshot(), NOW)).windows


async def test_targets_added_later_take_their_saved_values(tmp_path: Path) -> None:
    """Discovery lists the organisations after start-up: they are restored then."""
    path = await saved(tmp_path, await polled("org-a", "org-b"))
    after = fresh_poller()
    store = StateStore(path, after)
    assert 0 == store.restore()
    after.reconfigure([target("org-a", "cog_rotated"), target("org-b", "cog_rotated")], [H1, H24])
    assert 4 == store.adopt()
    assert {("org-a", "1h"), ("org-a", "24h"), ("org-b", "1h"), ("org-b", "24h")} == set(
        created(after)
    )


async def test_a_target_polled_since_is_not_overwritten_by_the_file(tmp_path: Path) -> None:
    path = await saved(tmp_path, await polled("org-a"))
    api, clock = FakeDevin(), Clock()
    clock.now = NOW + 600
    after = make_poller(api, clock)
    store = StateStore(path, after)
    store.restore()
    after.reconfigure([target("org-a")], [H1, H24])
    await after.poll_all()
    assert 0 == store.adopt()
    assert NOW + 600 == after.samples[target("org-a"), "1h"].fetched_at


async def test_nothing_is_saved_before_there_are_targets(tmp_path: Path) -> None:
    path = await saved(tmp_path, await polled("org-a"))
    before = path.read_bytes()
    empty = fresh_poller()
    empty.reconfigure([], [H1, H24])  # a change, but nothing to save yet
    await StateStore(path, empty).save_if_changed()
    assert before == path.read_bytes()
