"""SessionSync: the session list folded in poll after poll, each finished session once."""

from __future__ import annotations

from typing import Any

from exporter.devin.models import SessionItem, SessionPullRequest
from exporter.polling.live import OVERLAP_SECONDS, LiveSessions, SessionSync

NOW = 1_790_000_000.0
DAY = 86400.0


def session(sid: str, status: str, updated: float, **fields: Any) -> SessionItem:
    return SessionItem(
        session_id=sid,
        org_id="org-a",
        status=status,
        status_detail=fields.get("detail"),
        origin=fields.get("origin"),
        acus_consumed=fields.get("acus", 3.0),
        created_at=int(fields.get("created", updated - 600)),
        updated_at=int(updated),
        pull_requests=[SessionPullRequest(pr_url=url) for url in fields.get("prs", ())],
    )


def active(sync: SessionSync, now: float) -> dict[tuple[str, str], tuple[int, float]]:
    return {
        (s.status, s.status_detail): (s.sessions, s.oldest_updated_at)
        for s in sync.result(now).active
    }


def test_the_first_listing_reads_the_lookback_and_later_ones_overlap_the_previous() -> None:
    sync = SessionSync(lookback_seconds=DAY)

    first = sync.updated_after(NOW)
    sync.apply([], NOW)
    second = sync.updated_after(NOW + 60)

    assert int(NOW - DAY) == first
    assert int(NOW - OVERLAP_SECONDS) == second  # no later than the previous start


def test_a_listing_never_reaches_back_past_the_lookback() -> None:
    """After a long outage the next listing starts at now - lookback, not at the last start."""
    sync = SessionSync(lookback_seconds=3600)
    sync.apply([], NOW)

    assert int(NOW + 2 * DAY - 3600) == sync.updated_after(NOW + 2 * DAY)


def test_a_finished_session_on_two_pages_and_in_two_polls_counts_once() -> None:
    sync = SessionSync()
    done = session("s-1", "exit", NOW - 30, origin="slack", acus=7.0, created=NOW - 1000)

    sync.apply([done, done], NOW)  # the same session on two pages of one listing
    result = sync.apply([done], NOW + 60)  # and again in the overlap of the next

    assert [("slack", "exit", 1)] == [(f.origin, f.status, f.sessions) for f in result.finished]
    (acus,) = result.acus
    assert (1, 7.0) == (acus.count, acus.total)
    assert (0, 0, 0, 1, 0, 0, 0, 0, 0) == acus.bucket_counts  # 5 < 7 <= 10
    (duration,) = result.durations
    assert (1, 970.0) == (duration.count, duration.total)


def test_a_session_moves_from_active_to_finished_with_the_latest_view_winning() -> None:
    sync = SessionSync()
    sync.apply([session("s-1", "running", NOW - 100, detail="waiting_for_user")], NOW)
    assert {("running", "waiting_for_user"): (1, NOW - 100)} == active(sync, NOW)

    # One listing shows an old and a new view of it: the newest counts.
    result = sync.apply(
        [
            session("s-1", "error", NOW + 30, origin=None),
            session("s-1", "running", NOW - 100, detail="waiting_for_user"),
        ],
        NOW + 60,
    )

    assert {} == active(sync, NOW + 60)
    assert [("unknown", "error", 1)] == [(f.origin, f.status, f.sessions) for f in result.finished]


def test_an_older_view_of_a_finished_session_does_not_bring_it_back() -> None:
    sync = SessionSync()
    sync.apply([session("s-1", "exit", NOW - 10)], NOW)

    sync.apply([session("s-1", "running", NOW - 50, detail="working")], NOW + 60)

    assert {} == active(sync, NOW + 60)


def test_active_sessions_group_by_state_with_the_oldest_update() -> None:
    sync = SessionSync()
    result = sync.apply(
        [
            session("a", "running", NOW - 300, detail="working"),
            session("b", "running", NOW - 100, detail="working"),
            session("c", "suspended", NOW - 50, detail="out_of_credits"),
            session("d", "new", NOW - 20),
        ],
        NOW,
    )

    assert [
        ("new", "", 1, NOW - 20),
        ("running", "working", 2, NOW - 300),
        ("suspended", "out_of_credits", 1, NOW - 50),
    ] == [(s.status, s.status_detail, s.sessions, s.oldest_updated_at) for s in result.active]


def test_a_session_not_updated_within_the_lookback_stops_counting_and_is_forgotten() -> None:
    sync = SessionSync(lookback_seconds=3600)
    sync.apply([session("a", "suspended", NOW - 3000, detail="inactivity")], NOW)

    result = sync.apply([], NOW + 1000)

    assert () == result.active
    assert 0 == result.tracked_sessions


def test_memory_holds_completed_ids_for_seven_days_after_a_listing_last_showed_them() -> None:
    sync = SessionSync()
    finished = [session(f"f-{i}", "exit", NOW - 3600 + i) for i in range(500)]
    running = [session(f"r-{i}", "running", NOW - 7200 + i, detail="working") for i in range(7)]

    result = sync.apply([*finished, *running], NOW)
    assert (500, 507) == (sum(f.sessions for f in result.finished), result.tracked_sessions)

    # The open ones leave with the lookback; the completed ids stay for 7 days.
    assert 500 == sync.apply([], NOW + 7 * DAY - 1).tracked_sessions
    assert 0 == sync.apply([], NOW + 7 * DAY + 1).tracked_sessions


def counts(result: LiveSessions) -> list[tuple[str, int]]:
    return [(f.status, f.sessions) for f in result.finished]


def test_a_completed_session_served_again_later_is_not_counted_again() -> None:
    """A pull request merged after the session ended updates it; Devin serves it again."""
    sync = SessionSync()
    sync.apply([session("s-1", "exit", NOW - 10, acus=4.0)], NOW)

    later = [session("s-1", "exit", NOW + 15, acus=4.0)]
    sync.apply(later, NOW + 60)
    result = sync.apply([session("s-1", "exit", NOW + 5 * DAY, acus=4.0)], NOW + 5 * DAY)

    assert [("exit", 1)] == counts(result)
    assert (1, 4.0) == (result.acus[0].count, result.acus[0].total)
    assert 1 == result.durations[0].count


def test_running_and_finished_completes_the_session_once_and_keeps_it_active() -> None:
    sync = SessionSync()
    done = session("s-1", "running", NOW - 10, detail="finished", acus=2.5, created=NOW - 610)

    result = sync.apply([done], NOW)

    assert [("finished", 1)] == counts(result)
    assert (1, 2.5, 1, 600.0) == (
        result.acus[0].count,
        result.acus[0].total,
        result.durations[0].count,
        result.durations[0].total,
    )
    assert {("running", "finished"): (1, NOW - 10)} == active(sync, NOW)

    # It moves on to exit later: still one completion, and no longer active.
    result = sync.apply([session("s-1", "exit", NOW + 3600)], NOW + 3600)
    assert [("finished", 1)] == counts(result)
    assert {} == active(sync, NOW + 3600)


def test_a_session_that_works_again_and_completes_again_counts_once() -> None:
    sync = SessionSync()
    sync.apply([session("s-1", "running", NOW, detail="finished")], NOW)
    sync.apply([session("s-1", "running", NOW + 600, detail="working")], NOW + 600)
    assert {("running", "working"): (1, NOW + 600)} == active(sync, NOW + 600)

    result = sync.apply([session("s-1", "running", NOW + 1200, detail="finished")], NOW + 1200)

    assert [("finished", 1)] == counts(result)


def test_other_running_details_and_suspended_sessions_have_not_completed() -> None:
    sync = SessionSync()
    result = sync.apply(
        [
            session("a", "running", NOW, detail="working"),
            session("b", "running", NOW, detail="waiting_for_user"),
            session("c", "suspended", NOW, detail="inactivity"),
            session("d", "new", NOW),
        ],
        NOW,
    )

    assert [] == counts(result)


def test_remembered_ids_are_not_counted_again_after_a_restart() -> None:
    before = SessionSync()
    before.apply([session("s-1", "exit", NOW - 10), session("s-2", "running", NOW)], NOW)
    memory = before.memory()

    after = SessionSync()  # a restart: the first listing reads the lookback again
    after.remember(memory)
    result = after.apply(
        [session("s-1", "exit", NOW - 10), session("s-2", "running", NOW + 60, detail="finished")],
        NOW + 120,
    )

    assert [("finished", 1)] == counts(result)
    assert {"s-1", "s-2"} == set(after.memory())


def test_an_unknown_status_passes_through_cut_to_a_bounded_length() -> None:
    sync = SessionSync()
    long = "x" * 500

    result = sync.apply([session("a", "paused", NOW, detail=long)], NOW)

    (state,) = result.active
    assert ("paused", 64) == (state.status, len(state.status_detail))


def by_repo(result: LiveSessions) -> dict[str, tuple[int, float]]:
    return {r.repo: (r.sessions, r.acus) for r in result.by_repo}


GH = "https://github.com/acme/{}/pull/1"


def test_a_completion_counts_once_under_its_first_pull_request_s_repository() -> None:
    sync = SessionSync()
    two = [GH.format("api"), "https://gitlab.com/acme/web/-/merge_requests/2"]
    done = session("s-1", "exit", NOW - 30, acus=7.0, prs=two)
    none = session("s-2", "running", NOW - 20, detail="finished", acus=2.0)

    sync.apply([done, none], NOW)
    later = session("s-1", "exit", NOW + 30, acus=9.0, prs=[GH.format("web")])  # merged later
    result = sync.apply([later], NOW + 60)

    assert {"github.com/acme/api": (1, 7.0), "": (1, 2.0)} == by_repo(result)


def test_repositories_past_max_repos_count_as_other_and_no_pr_does_not_use_a_slot() -> None:
    sync = SessionSync(max_repos=2)
    items = [
        session("s-0", "exit", NOW - 90, acus=1.0),
        session("s-1", "exit", NOW - 80, acus=1.0, prs=[GH.format("a")]),
        session("s-2", "exit", NOW - 70, acus=1.0, prs=[GH.format("b")]),
        session("s-3", "exit", NOW - 60, acus=1.0, prs=[GH.format("c")]),
        session("s-4", "exit", NOW - 50, acus=1.0, prs=["https://example.com/x"]),
    ]
    sync.apply(items, NOW)
    result = sync.apply(
        [session("s-5", "error", NOW + 10, acus=2.0, prs=[GH.format("a")])], NOW + 60
    )

    assert {
        "": (1, 1.0),
        "github.com/acme/a": (2, 3.0),
        "github.com/acme/b": (1, 1.0),
        "other": (2, 2.0),  # c came third; an unreadable URL names no repository
    } == by_repo(result)
    sync.max_repos = 3  # a reload that raises it admits the next new one
    result = sync.apply([session("s-6", "exit", NOW + 70, prs=[GH.format("d")])], NOW + 120)
    assert (1, 3.0) == by_repo(result)["github.com/acme/d"]


def test_a_restart_s_remembered_ids_are_not_counted_by_repository_either() -> None:
    done = session("s-1", "exit", NOW - 30, prs=[GH.format("api")])
    before = SessionSync()
    before.apply([done], NOW)

    after = SessionSync()
    after.remember(before.memory())
    result = after.apply([done, session("s-2", "exit", NOW, prs=[GH.format("api")])], NOW + 60)

    assert {"github.com/acme/api": (1, 3.0)} == by_repo(result)
