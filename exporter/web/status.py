"""What the status page and /status.json show: one line per target, worst first.

The page is plain HTML that works without JavaScript (a GET form filters on the server by
hiding rows); its script only filters as one types and refreshes the table. It shows the
reason, HTTP status and hint of a failure, never Devin's detail string, and never a key.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, Literal

from exporter.polling.hints import hint_for
from exporter.polling.snapshot import Snapshot, WindowState
from exporter.polling.strategies import strategy_of
from exporter.polling.targets import Target

State = Literal["failing", "backing_off", "pending", "ok"]
# In the order the page lists them: what needs a person first.
STATES: Final[tuple[State, ...]] = ("failing", "backing_off", "pending", "ok")
_LABELS: Final[dict[State, str]] = {
    "failing": "failing",
    "backing_off": "backing off",
    "pending": "pending",
    "ok": "ok",
}
REFRESH_SECONDS: Final = 15
ENTERPRISE: Final = "(enterprise)"  # how the page names the org of enterprise-wide targets
_MAX_QUERY_CHARS: Final = 200


@dataclass(frozen=True)
class WindowStatus:
    """One window of a target: how its latest poll went."""

    window: str
    state: Literal["failing", "pending", "ok"]
    reason: str | None  # of the latest poll, when it failed
    http_status: int | None
    last_success_timestamp: float | None


@dataclass(frozen=True)
class LastError:
    """The most recent failed poll of a target (any window), kept after it recovers."""

    reason: str
    http_status: int | None  # None when Devin gave no answer (timeout, connection)
    timestamp: float
    hint: str


@dataclass(frozen=True)
class TargetStatus:
    """One target as the page and the JSON show it."""

    endpoint: str
    org: str
    org_name: str  # the configured name, else the id; "" for enterprise-wide targets
    segment: str
    state: State
    windows: tuple[WindowStatus, ...]
    last_success_timestamp: float | None  # the oldest window's: how stale the target is
    next_poll_timestamp: float | None
    backoff_until_timestamp: float | None  # while its key is refused
    backoff_failures: int  # refusals in a row, while backing off
    last_error: LastError | None

    @property
    def sort_key(self) -> tuple[int, str, str, str, str]:
        return (
            STATES.index(self.state),
            self.org_name.casefold(),
            self.org,
            self.endpoint,
            self.segment,
        )


@dataclass(frozen=True)
class Status:
    """Every target, worst first, as of `now`."""

    now: float
    targets: tuple[TargetStatus, ...]

    def counts(self) -> dict[State, int]:
        found = Counter(t.state for t in self.targets)
        return {state: found[state] for state in STATES}

    def reasons(self) -> list[tuple[str, int | None, int]]:
        """(reason, HTTP status, targets) of the targets failing now, most common first."""
        found = Counter(
            (t.last_error.reason, t.last_error.http_status)
            for t in self.targets
            if t.state in ("failing", "backing_off") and t.last_error is not None
        )
        ranked = sorted(found.items(), key=lambda item: (-item[1], item[0][0]))
        return [(reason, code, n) for (reason, code), n in ranked]


def _window_status(label: str, state: WindowState) -> WindowStatus:
    if state.last_attempt is None:
        return WindowStatus(label, "pending", None, None, state.last_success)
    if state.last_error is not None:
        return WindowStatus(
            label, "failing", state.last_error, state.last_failure_status, state.last_success
        )
    return WindowStatus(label, "ok", None, None, state.last_success)


def target_status(snapshot: Snapshot, target: Target, org_names: Mapping[str, str]) -> TargetStatus:
    """What the snapshot holds of one target."""
    labels = [w.label for w in strategy_of(target.row).windows(snapshot.windows)]
    states = [(label, snapshot.states[target, label]) for label in labels]
    windows = tuple(_window_status(label, state) for label, state in states)
    backoff = snapshot.backoff.get(target)
    state: State
    if backoff is not None:
        state = "backing_off"
    elif any(w.state == "failing" for w in windows):
        state = "failing"
    elif all(w.state == "pending" for w in windows):
        state = "pending"
    else:
        state = "ok"
    successes = [w.last_success_timestamp for w in windows]
    known = [s for s in successes if s is not None]
    failures = [
        (s.last_failure_at, s.last_failure, s.last_failure_status)
        for _, s in states
        if s.last_failure_at is not None and s.last_failure is not None
    ]
    last_error = None
    if failures:
        at, reason, http_status = max(failures, key=lambda f: f[0])
        last_error = LastError(reason, http_status, at, hint_for(target, reason))
    return TargetStatus(
        endpoint=target.endpoint,
        org=target.org,
        org_name=org_names.get(target.org, target.org),
        segment=target.segment,
        state=state,
        windows=windows,
        last_success_timestamp=min(known) if known else None,
        next_poll_timestamp=snapshot.next_poll(target),
        backoff_until_timestamp=backoff.retry_at if backoff is not None else None,
        backoff_failures=backoff.failures if backoff is not None else 0,
        last_error=last_error,
    )


def collect(snapshot: Snapshot, org_names: Mapping[str, str], now: float) -> Status:
    """Every target of the snapshot (the one /metrics reads), failing and backing off first."""
    targets = [target_status(snapshot, t, org_names) for t in snapshot.targets]
    return Status(now, tuple(sorted(targets, key=lambda t: t.sort_key)))


# --- /status.json ---------------------------------------------------------------------


def as_json(status: Status, *, version: str, ready: bool) -> dict[str, Any]:
    """The document served at /status.json (docs/status-page.md describes it)."""
    return {
        "version": version,
        "ready": ready,
        "generated_timestamp": status.now,
        "summary": {**status.counts(), "total": len(status.targets)},
        "targets": [_target_json(t) for t in status.targets],
    }


def _target_json(target: TargetStatus) -> dict[str, Any]:
    error = target.last_error
    return {
        "endpoint": target.endpoint,
        "org": target.org,
        "org_name": target.org_name,
        "segment": target.segment,
        "state": target.state,
        "last_success_timestamp": target.last_success_timestamp,
        "next_poll_timestamp": target.next_poll_timestamp,
        "backoff_until_timestamp": target.backoff_until_timestamp,
        "last_error": None
        if error is None
        else {
            "reason": error.reason,
            "http_status": error.http_status,
            "timestamp": error.timestamp,
            "hint": error.hint,
        },
        "windows": [
            {
                "window": w.window,
                "state": w.state,
                "reason": w.reason,
                "http_status": w.http_status,
                "last_success_timestamp": w.last_success_timestamp,
            }
            for w in target.windows
        ],
    }


# --- the HTML page --------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """The rows a person asked for: by state, and by words that must all appear."""

    state: State | None = None
    text: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filter:
        """From the page's query string; anything unknown means no filter."""
        state = query.get("state", "")
        return cls(
            state=next((s for s in STATES if s == state), None),
            text=query.get("q", "")[:_MAX_QUERY_CHARS],
        )

    def shows(self, state: State, text: str) -> bool:
        if self.state is not None and state != self.state:
            return False
        haystack = text.casefold()
        return all(word in haystack for word in self.text.casefold().split())


def _span(seconds: float) -> str:
    """A duration as a person reads it on a dashboard: 40 s, 5 min, 3 h, 2 d."""
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _ago(timestamp: float | None, now: float) -> str:
    return "never" if timestamp is None else f"{_span(now - timestamp)} ago"


def _until(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "-"
    return f"in {_span(timestamp - now)}" if timestamp > now else "due"


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M:%S UTC")


def _reason(reason: str, http_status: int | None) -> str:
    return reason if http_status is None else f"{reason} (HTTP {http_status})"


_e = html.escape
_TAG = re.compile(r"<[^>]*>")


def _problem(target: TargetStatus, now: float) -> str:
    """The last cell: what went wrong, what to do, and when the next try is."""
    error = target.last_error
    if target.state == "pending":
        return "waiting for the first poll"
    if error is None:
        return ""
    when = f'<span title="{_utc(error.timestamp)}">{_ago(error.timestamp, now)}</span>'
    if target.state == "ok":
        return f"<small>last failed {when}: {_e(_reason(error.reason, error.http_status))}</small>"
    cell = (
        f"<b>{_e(error.reason)}</b>"
        + (f" HTTP {error.http_status}" if error.http_status is not None else "")
        + f", {when}"
    )
    if error.hint:
        cell += f'<br><span class="hint">{_e(error.hint)}</span>'
    until = target.backoff_until_timestamp
    if until is not None:
        refusals = f"{target.backoff_failures} refusal" + "s" * (target.backoff_failures > 1)
        cell += (
            f"<br>Backing off after {refusals} in a row, until "
            f'<span title="{_utc(until)}">{_clock_time(until)}</span> ({_until(until, now)})'
        )
    return cell


def _windows(target: TargetStatus) -> str:
    marks = {"failing": "<b>{}</b>", "pending": "<i>{}</i>", "ok": "{}"}
    return " ".join(marks[w.state].format(_e(w.window)) for w in target.windows)


def _row(target: TargetStatus, now: float, shown: Filter) -> tuple[str, bool]:
    """The row of a target, and whether the filter shows it."""
    endpoint = _e(target.endpoint) + (
        f" <small>segment {_e(target.segment)}</small>" if target.segment else ""
    )
    if not target.org:
        org = ENTERPRISE
    elif target.org_name != target.org:
        org = f"{_e(target.org_name)} <small>{_e(target.org)}</small>"
    else:
        org = _e(target.org)
    cells = (
        _LABELS[target.state],
        endpoint,
        org,
        _windows(target),
        _ago(target.last_success_timestamp, now),
        _until(target.next_poll_timestamp, now),
        _problem(target, now),
    )
    visible = shown == Filter() or shown.shows(
        target.state, " ".join(html.unescape(_TAG.sub("", cell)) for cell in cells)
    )
    hidden = "" if visible else " hidden"
    # End tags of cells and rows are optional in HTML; leaving them out keeps a page of
    # a thousand targets small.
    return f'<tr class="{target.state}"{hidden}><td>' + "<td>".join(cells), visible


def _summary(status: Status) -> str:
    counts = status.counts()
    boxes = [
        f'<a class="{state}{"" if counts[state] else " none"}" href="?state={state}">'
        f"<b>{counts[state]}</b>{_LABELS[state]}</a>"
        for state in STATES
    ]
    boxes.append(f'<a class="all" href="?"><b>{len(status.targets)}</b>targets</a>')
    reasons = ", ".join(
        f'<a href="?q={_e(reason)}">{_e(_reason(reason, code))}</a>: {n}'
        for reason, code, n in status.reasons()
    )
    why = f"<p>Failing by reason: {reasons}</p>" if reasons else ""
    return f'<div id="summary"><nav>{"".join(boxes)}</nav>{why}</div>'


def _headline(status: Status) -> tuple[str, str]:
    """(class, text) of the one line that says whether anything needs attention."""
    counts = status.counts()
    bad = counts["failing"] + counts["backing_off"]
    total = len(status.targets)
    if bad:
        parts = [f"{counts[s]} {_LABELS[s]}" for s in ("failing", "backing_off") if counts[s]]
        return "bad", f"{bad} of {total} targets need attention: {', '.join(parts)}"
    if counts["pending"]:
        return "pending", f"{counts['pending']} of {total} targets not polled yet"
    return "good", f"All {total} targets ok"


def render_page(
    status: Status, *, version: str, ready: bool, metrics_path: str, shown: Filter
) -> str:
    """The status page, every target in it (a filter only hides rows)."""
    kind, headline = _headline(status)
    options = "".join(
        f'<option value="{state}"{" selected" if shown.state == state else ""}>'
        f"{_LABELS[state]}</option>"
        for state in STATES
    )
    rows = [_row(t, status.now, shown) for t in status.targets]
    any_shown = any(visible for _, visible in rows)
    return _PAGE.format(
        title=_e(headline),
        headline_class=kind,
        headline=_e(headline),
        version=_e(version),
        readiness="ready" if ready else "starting: waiting for the first poll of every target",
        generated=_utc(status.now),
        # Relative links, like the others: the page works behind a path prefix too.
        metrics=_e(metrics_path.lstrip("/")),
        summary=_summary(status),
        options=options,
        text=_e(shown.text),
        rows="\n".join(row for row, _ in rows),
        empty=" hidden" if any_shown or not rows else "",
        no_targets=""
        if rows
        else "<p>No targets yet: the configuration (or discovery) "
        "has given the exporter nothing to poll so far.</p>",
        refresh=REFRESH_SECONDS,
    )


def _asset(name: str) -> str:
    return resources.files("exporter.web").joinpath("assets", name).read_text(encoding="utf-8")


# Served as files rather than inline, so that a Content-Security-Policy of
# `default-src 'self'` (http_server_config.headers) leaves the page styled and scripted.
# The script only filters and refreshes; everything else is in the HTML.
STYLE: Final = _asset("status.css")
SCRIPT: Final = _asset("status.js")
_PAGE: Final = _asset("status.html")  # a str.format template
