"""Live session state per organisation, from the session lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.metrics.view import ViewCollector, gauge
from exporter.polling.live import ACUS_BUCKETS, DURATION_BUCKETS, Histogram, LiveSessions


class SessionsLiveCollector(ViewCollector):
    """Sessions open now, and sessions completed since start (each once), for example::

    devin_sessions_active{org="org-a",status="running",status_detail="waiting_for_user"} 2
    devin_sessions_finished_total{org="org-a",origin="slack",status="finished"} 3
    devin_session_acus_bucket{le="5.0",org="org-a",origin="slack"} 14
    devin_sessions_finished_by_repo_total{org="org-a",repo="github.com/acme/api"} 5
    devin_session_acus_by_repo_total{org="org-a",repo="github.com/acme/api"} 31.5
    """

    def collect(self) -> Iterator[Metric]:
        active = gauge(
            "devin_sessions_active",
            "Sessions whose latest status is neither exit nor error, updated within the "
            "lookback, by status and status_detail (v3 session list).",
            ["org", "status", "status_detail"],
        )
        oldest = gauge(
            "devin_sessions_active_oldest_timestamp_seconds",
            "Unix time of the least recent update among the sessions counted in "
            "devin_sessions_active (v3 session list).",
            ["org", "status", "status_detail"],
        )
        finished = CounterMetricFamily(
            "devin_sessions_finished",
            "Sessions seen completing (status exit, error, or finished for running with "
            "status_detail finished), each counted once, at its first completion (v3 session "
            "list).",
            labels=["org", "origin", "status"],
        )
        acus = HistogramMetricFamily(
            "devin_session_acus",
            "ACUs consumed by each completed session, at its first completion (v3 session list).",
            labels=["org", "origin"],
        )
        durations = HistogramMetricFamily(
            "devin_session_duration_seconds",
            "Seconds from creation to the first completion of each completed session (v3 "
            "session list).",
            labels=["org", "origin"],
        )
        by_repo = CounterMetricFamily(
            "devin_sessions_finished_by_repo",
            "Sessions seen completing, each counted once at its first completion, by the "
            'repository (host/owner/name) of its first pull request: "" without one, '
            "other past endpoints.sessions_live.max_repos repositories (v3 session list).",
            labels=["org", "repo"],
        )
        acus_by_repo = CounterMetricFamily(
            "devin_session_acus_by_repo",
            "ACUs consumed by the sessions counted in devin_sessions_finished_by_repo_total, "
            "at their first completion (v3 session list).",
            labels=["org", "repo"],
        )
        for target, _, live in self._view.fresh(LiveSessions):
            org = target.org
            for state in live.active:
                labels = [org, state.status, state.status_detail]
                active.add_metric(labels, state.sessions)
                oldest.add_metric(labels, state.oldest_updated_at)
            for count in live.finished:
                finished.add_metric([org, count.origin, count.status], count.sessions)
            for histogram in live.acus:
                _observed(acus, org, histogram, ACUS_BUCKETS)
            for histogram in live.durations:
                _observed(durations, org, histogram, DURATION_BUCKETS)
            for repo in live.by_repo:
                by_repo.add_metric([org, repo.repo], repo.sessions)
                acus_by_repo.add_metric([org, repo.repo], repo.acus)
        yield from (active, oldest, finished, acus, durations, by_repo, acus_by_repo)


def _observed(
    family: HistogramMetricFamily, org: str, histogram: Histogram, bounds: Sequence[float]
) -> None:
    cumulative, running = [], 0
    for bound, count in zip((*map(str, bounds), "+Inf"), histogram.bucket_counts, strict=True):
        running += count
        cumulative.append((bound, float(running)))
    family.add_metric([org, histogram.origin], cumulative, histogram.total)


COLLECTORS = (SessionsLiveCollector,)
