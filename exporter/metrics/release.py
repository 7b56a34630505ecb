"""Hands memory a rendering freed back to the operating system (glibc only).

A rendering of tens of thousands of series allocates and frees tens of MB in a worker
thread. glibc keeps what was freed in that thread's arena for reuse, so the process's RSS
stays at the rendering's peak long after it ended; `malloc_trim(0)` returns the free pages
of every arena. Elsewhere (musl, macOS) there is no such call and this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> bool:
    """Return freed heap pages to the OS; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
