"""The last good snapshot on disk (`state.path`), so that a restart serves at once.

The file is JSON, versioned, and holds what a scrape shows of each (target, window): the
target's identity without its key (endpoint, org, segment), the window's label, when the
value was fetched, the value's fields, and the outcome of the latest poll (for `devin_up`
and the status page). It is written whole to a temporary file beside it and renamed over
it, so a reader sees the old file or the new one, never half of one.

Reading trusts nothing: a file that is not this format, of another version, unreadable
or corrupt is logged and ignored, and the exporter starts empty as before. Values are
validated by the models the current code polls them into; nothing in the file names a
type or code to run. Of the session list (`sessions_live`) only the ids of completed
sessions are kept, so that a restart counts none of them again; its other figures depend
on what earlier polls saw, which the next poll gathers again. Of per-user consumption
nothing is kept: its labels may be user ids, and the first poll after a start (at once)
asks again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from exporter.devin.table import ENDPOINTS, Endpoint
from exporter.files import write_atomically
from exporter.polling.poller import Poller
from exporter.polling.snapshot import Sample, Snapshot, WindowState
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target

FORMAT = "devin-exporter-state"
VERSION = 2
# Version 1 is version 2 without `sessions`: it is read as it is.
READABLE_VERSIONS = frozenset({1, VERSION})
# A state file beyond this is no state file of ours (about 1 KB per target and window).
MAX_BYTES = 256 * 2**20

Clock = Callable[[], float]
log = structlog.get_logger("exporter.polling.state")


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StoredWindow(_Stored):
    """One (target, window): its latest value, if any, and its latest poll's outcome."""

    endpoint: str
    org: str
    segment: str = ""
    window: str
    fetched_at: float | None = None  # None: no value was ever fetched
    value: dict[str, Any] | None = None
    last_attempt: float | None = None
    last_error: str | None = None


SessionId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class StoredSessions(_Stored):
    """One session-list target: the ids of its completed sessions, each with the time a
    listing last showed it."""

    endpoint: str
    org: str
    segment: str = ""
    completed: dict[SessionId, float]


class StateFile(_Stored):
    """The whole file."""

    format: Literal["devin-exporter-state"]
    version: int
    written_at: float
    windows: list[StoredWindow]
    sessions: list[StoredSessions] = []


class _Header(BaseModel):
    """The first thing checked: whose file, which version (anything else is not read)."""

    model_config = ConfigDict(extra="allow")

    format: str | None = None
    version: int | None = None


def value_type(row: Endpoint[Any]) -> type[BaseModel] | None:
    """What a sample of `row` holds, by how it is polled; None for what is not kept."""
    return strategy_of(row).value_type(row)


SessionMemory = Mapping[Target, dict[str, float]]


def encode(snapshot: Snapshot, written_at: float, sessions: SessionMemory | None = None) -> bytes:
    """The snapshot (and the completed session ids) as the file's bytes: no key, whatever
    the targets hold."""
    windows = []
    for (target, label), state in sorted(snapshot.states.items(), key=lambda kv: kv[0]):
        if value_type(target.row) is None:
            continue
        sample = snapshot.samples.get((target, label))
        if sample is None and state.last_attempt is None:
            continue
        windows.append(
            StoredWindow(
                endpoint=target.endpoint,
                org=target.org,
                segment=target.segment,
                window=label,
                fetched_at=sample.fetched_at if sample else None,
                value=sample.value.model_dump(mode="json") if sample else None,
                last_attempt=state.last_attempt,
                last_error=state.last_error,
            )
        )
    stored_sessions = [
        StoredSessions(endpoint=t.endpoint, org=t.org, segment=t.segment, completed=ids)
        for t, ids in sorted((sessions or {}).items(), key=lambda kv: kv[0])
        if ids
    ]
    state_file = StateFile(
        format=FORMAT,
        version=VERSION,
        written_at=written_at,
        windows=windows,
        sessions=stored_sessions,
    )
    return state_file.model_dump_json().encode()


class StateError(Exception):
    """Why a state file was not used; the message names no key and no value."""


def decode(data: bytes) -> StateFile:
    """The file's contents, checked: its format and version first, then every field."""
    try:
        header = _Header.model_validate_json(data)
    except ValidationError as err:
        raise StateError("not JSON, or not an object") from err
    if header.format != FORMAT:
        raise StateError("not a devin-exporter state file")
    if header.version not in READABLE_VERSIONS:
        raise StateError(f"version {header.version} is not {VERSION}")
    try:
        return StateFile.model_validate_json(data)
    except ValidationError as err:
        first = err.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StateError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class Restored:
    """What a state file gave back: samples and window states, keyed by current targets."""

    samples: dict[tuple[Target, str], Sample]
    states: dict[tuple[Target, str], WindowState]
    skipped: int  # entries with no current target or window, or a value that did not fit


def match(
    state_file: StateFile, targets: Iterable[Target], windows_of: Callable[[Target], list[str]]
) -> Restored:
    """Put each stored window back on the configured target it belongs to, if any."""
    by_identity = {(t.endpoint, t.org, t.segment): t for t in targets}
    samples: dict[tuple[Target, str], Sample] = {}
    states: dict[tuple[Target, str], WindowState] = {}
    skipped = 0
    for stored in state_file.windows:
        target = by_identity.get((stored.endpoint, stored.org, stored.segment))
        kind = value_type(ENDPOINTS[stored.endpoint]) if stored.endpoint in ENDPOINTS else None
        if target is None or kind is None or stored.window not in windows_of(target):
            skipped += 1
            continue
        key = (target, stored.window)
        if stored.value is not None and stored.fetched_at is not None:
            try:
                # JSON-mode validation: the models are strict about Python types, and
                # the value came from JSON.
                value = kind.model_validate_json(json.dumps(stored.value))
            except ValidationError:
                skipped += 1
                continue
            samples[key] = Sample(value, stored.fetched_at)
        states[key] = WindowState(
            last_success=stored.fetched_at,
            last_error=stored.last_error,
            last_attempt=stored.last_attempt,
            last_failure=stored.last_error,
            last_failure_at=stored.last_attempt if stored.last_error else None,
        )
    return Restored(samples, states, skipped)


def read(path: Path) -> StateFile | None:
    """The state file at `path`, or None (logged) when absent, unreadable or not ours."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except FileNotFoundError:
        log.info("state_absent", path=str(path))
        return None
    except OSError as err:
        log.warning("state_ignored", path=str(path), reason="unreadable", error=err.strerror)
        return None
    if len(data) > MAX_BYTES:
        log.warning("state_ignored", path=str(path), reason=f"larger than {MAX_BYTES} bytes")
        return None
    try:
        return decode(data)
    except StateError as err:
        log.warning("state_ignored", path=str(path), reason=str(err))
        return None


class StateStore:
    """Restores the poller from `path` at start, and saves it there when it has changed."""

    def __init__(self, path: Path, poller: Poller, *, clock: Clock = time.time) -> None:
        self.path = path
        self._poller = poller
        self._clock = clock
        self._saved_version: int | None = None
        self._loaded: StateFile | None = None  # the file read at start, until all is polled
        self._saving = asyncio.Lock()  # one save at a time: an older one never lands last
        self._failure: str | None = None  # the last save's error, logged once until it changes

    def restore(self) -> int:
        """Load the file into the poller; the number of samples restored (0 on any trouble).

        The file is kept until every target has been polled, for `adopt`: targets that
        discovery adds later take their values from it too.
        """
        self._loaded = read(self.path)
        if self._loaded is None:
            return 0
        restored = self._restore_unpolled()
        self._remember_sessions()
        self._saved_version = self._poller.version  # nothing new to save yet
        log.info(
            "state_restored",
            path=str(self.path),
            samples=len(restored.samples),
            skipped=restored.skipped or None,
            age_seconds=round(self._clock() - self._loaded.written_at, 1),
        )
        return len(restored.samples)

    def adopt(self) -> int:
        """Restore, from the file read at start, the targets a reconfiguration added that
        have not been polled yet (discovery lists organisations after start-up); the number
        of samples restored. Once every target has been polled the file is let go."""
        if self._loaded is None:
            return 0
        if self._poller.ready:
            self._loaded = None
            return 0
        restored = self._restore_unpolled()
        self._remember_sessions()
        if restored.samples:
            log.info("state_adopted", path=str(self.path), samples=len(restored.samples))
        return len(restored.samples)

    def _restore_unpolled(self) -> Restored:
        """Put the loaded file's values on the targets never polled nor restored yet."""
        assert self._loaded is not None
        poller = self._poller
        found = match(
            self._loaded, poller.targets, lambda t: [w.label for w in poller.windows_of(t)]
        )

        def untouched(key: tuple[Target, str]) -> bool:
            state = poller.states.get(key)
            return key not in poller.samples and (state is None or state.last_attempt is None)

        restored = Restored(
            {k: v for k, v in found.samples.items() if untouched(k)},
            {k: v for k, v in found.states.items() if untouched(k)},
            found.skipped,
        )
        if restored.samples or restored.states:
            poller.restore(restored.samples, restored.states)
        return restored

    def _remember_sessions(self) -> None:
        """Give each session-list target the completed ids its previous run saw."""
        assert self._loaded is not None
        by_identity = {(t.endpoint, t.org, t.segment): t for t in self._poller.targets}
        for stored in self._loaded.sessions:
            target = by_identity.get((stored.endpoint, stored.org, stored.segment))
            if target is not None:
                self._poller.remember_sessions(target, stored.completed)

    def pending(self) -> Snapshot | None:
        """A snapshot to save, or None when nothing changed since the last save, or when
        there are no targets yet (discovery has not listed any): the previous run's file
        is then worth more than an empty one."""
        if self._poller.version == self._saved_version or not self._poller.targets:
            return None
        return self._poller.snapshot()

    async def save_if_changed(self) -> None:
        """Save the poller's snapshot if it changed since the last save, off the event loop."""
        async with self._saving:
            snapshot = self.pending()
            if snapshot is not None:
                sessions = self._poller.session_memory()  # copied here, on the event loop
                await asyncio.to_thread(self.save, snapshot, sessions)

    def save(self, snapshot: Snapshot, sessions: SessionMemory | None = None) -> bool:
        """Write `snapshot` and the completed session ids (blocking: call it from a worker
        thread); False, logged, if the file could not be written: the exporter goes on
        without it."""
        try:
            write_atomically(self.path, encode(snapshot, self._clock(), sessions))
        except OSError as err:
            if err.strerror != self._failure:
                log.warning("state_not_saved", path=str(self.path), error=err.strerror)
            self._failure = err.strerror
            return False
        if self._failure is not None:
            log.info("state_saved", path=str(self.path), after="earlier failures")
        self._failure = None
        self._saved_version = snapshot.version
        return True
