"""The process's memory: what it holds (resident set size) and handing freed heap back to the system.

Loading a model builds fp32 weights and packs them; what is freed then stays in the C heap
(glibc raises its mmap threshold after large frees, so later large blocks come from the heap
and are not returned), and six models held 15x their weights in RSS. `release_free_memory`
returns it (glibc's `malloc_trim`; a no-op elsewhere).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource


def rss_bytes() -> int:
    """The process's resident set size now (Linux /proc; the peak where there is none)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (after loading or unloading a model)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
