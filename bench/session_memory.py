"""Memory of the session sync's completed ids: `python -m bench.session_memory [N]`.

Folds N completed sessions (Devin's id format, `devin-` and 32 hex digits) into one
SessionSync, lets the listing go, and prints the bytes the sync still holds for them
(traced allocations, so the figure is the sync's own, not the process's).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import uuid

from exporter.devin.models import SessionItem
from exporter.polling.live import OVERLAP_SECONDS, SessionSync

NOW = 1_790_000_000.0


def held_bytes(sessions: int) -> int:
    sync = SessionSync()
    sync.apply([], NOW)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        items = [
            SessionItem(
                session_id=f"devin-{uuid.uuid4().hex}",
                org_id="org-a",
                status="exit",
                origin="slack",
                acus_consumed=3.0,
                created_at=int(NOW - 600),
                updated_at=int(NOW - 10),
            )
            for _ in range(sessions)
        ]
        sync.apply(items, NOW + 1)
        del items
        # A later listing: what only the overlap needed is gone, the completed ids stay.
        sync.apply([], NOW + 2 * OVERLAP_SECONDS + 3600)
        gc.collect()
        assert sessions == len(sync.memory())
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    held = held_bytes(sessions)
    print(f"{sessions} completed sessions: {held} bytes, {held / sessions:.0f} bytes each")


if __name__ == "__main__":
    main()
