"""Which organisations a replica polls when several share the work (`--shard N/M`)."""

from __future__ import annotations

import hashlib
import re

_ORDINAL = re.compile(r"-(\d+)$")


def shard_of(org_id: str, count: int) -> int:
    """A stable shard for an org: the same on every replica, release and Python run."""
    digest = hashlib.sha256(org_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """`N/M` (0-based N) as (index, count)."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ValueError(f"{text!r} is not N/M, for example 0/3")
    if not 0 <= int(index) < int(count):
        raise ValueError(f"{text!r}: N must be at least 0 and less than M")
    return int(index), int(count)


def ordinal_from_hostname(hostname: str) -> int | None:
    """The ordinal of a StatefulSet pod name (`devin-exporter-2` -> 2), if it has one."""
    match = _ORDINAL.search(hostname)
    return int(match.group(1)) if match else None
