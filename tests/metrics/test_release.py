"""Handing freed memory back to the OS after a render: glibc has the call, others do not."""

from __future__ import annotations

import platform

from exporter.metrics.release import release_freed_memory


def test_freed_memory_is_released_exactly_where_the_c_library_can() -> None:
    assert (platform.libc_ver()[0] == "glibc") == release_freed_memory()
