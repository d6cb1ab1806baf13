"""Give the C heap's free memory back to the system after a batch (glibc's ``malloc_trim``).

Why: a read round lists the whole account (XML pages, parsed answers, compact listings); when the
round ends, Python frees all of it, but glibc keeps the freed pages of its heap for later, so the
controller's RSS stays at the round's peak for ever after. ``malloc_trim(0)`` returns the free pages
(``madvise(MADV_DONTNEED)`` of whole free pages in every arena); the memory is still there to reuse
(page faults bring it back), so the next round's peak is not higher, and the RSS between rounds is
what is live. Python's own small-object arenas are not glibc's heap: they are unmapped when empty,
and are not touched here.

Only on glibc (musl, macOS and Windows have no ``malloc_trim``: :func:`release` does nothing there).
It takes a few milliseconds on a 200 MB heap and runs once per batch (resync, node sync, initial
sync), not per Service. :data:`ENABLED` = False turns it off (``bench/scale_memory.py
--no-malloc-trim`` compares).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import platform
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Off: :func:`release` does nothing (for measurement).
ENABLED = True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]  # type: ignore[attr-defined]
    trim.restype = ctypes.c_int  # type: ignore[attr-defined]
    return trim


def release() -> bool:
    """Return the C heap's free pages to the system; whether that was done (glibc, enabled)."""
    trim = _malloc_trim() if ENABLED else None
    if trim is None:
        return False
    try:
        trim(0)
    except Exception:  # never let memory housekeeping break a batch
        log.debug("malloc_trim failed", exc_info=True)
        return False
    return True
