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
import gc
import logging
import platform
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Off: :func:`release` and :func:`configure` do nothing (for measurement).
ENABLED = True
#: glibc's ``M_MMAP_THRESHOLD`` parameter of ``mallopt``, and the value :func:`configure` fixes it at
#: (glibc's own starting value, 128 KiB).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


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


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt: Callable[[int, int], int] = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # type: ignore[attr-defined]
    mallopt.restype = ctypes.c_int  # type: ignore[attr-defined]
    return mallopt


def configure() -> bool:
    """Keep glibc's mmap threshold at 128 KiB for the life of the process; whether it was set.

    Why: glibc serves an allocation of at least the threshold (a listing page's HTTP body and its
    decoded text, a large dict's table) with its own ``mmap``, unmapped again by ``free``. But by
    default the threshold is dynamic: each such block freed raises it to that block's size (up to
    32 MiB), so after the first large answer every later one is carved from the heap instead, where
    it stays resident after ``free`` until :func:`release`, and where the peak of a burst of large
    answers (10 workers and the informers at once) is the heap's for good. Setting the threshold
    explicitly turns the dynamic raise off (mallopt(3)), so large blocks keep coming and going by
    ``mmap``; the cost is a ``mmap``/``munmap`` pair per large allocation (not counted; the
    controller's CPU seconds in the pair below: 60.1 / 59.0 create, 27.2 / 25.8 restart). ``bench/scale_memory.py`` at 3,000 AWS Services,
    ``MALLOC_ARENA_MAX=2``, under load: in a same-code pair run side by side, restart peak 106.3 ->
    102.8 MB, peak after create 114.8 -> 112.5 MB; in an earlier pair whose second run also had two
    small memory changes, restart peak 106.6 -> 103.1 MB (issue 14). Only on glibc.
    """
    mallopt = _mallopt() if ENABLED else None
    if mallopt is None:
        return False
    try:
        return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except Exception:  # never let memory housekeeping break a start
        log.debug("mallopt failed", exc_info=True)
        return False


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


#: Seconds between two :func:`settle` calls that collect (None: :func:`settle` does nothing). Off
#: by default, so that a library or a test process (the demo runs in the tests' process too) keeps
#: the interpreter's own garbage collection; ``lbprov run`` turns it on (:data:`SETTLE_SECONDS`), as
#: ``bench/scale_controller.py`` does to measure it.
SETTLE_INTERVAL: float | None = None
#: The interval ``lbprov run`` uses: one full collection per five minutes at most.
SETTLE_SECONDS = 300.0
_settle_lock = threading.Lock()
_settled_at: float | None = None


def settle(now: Callable[[], float] = time.monotonic) -> bool:
    """Collect the garbage once and freeze what survives (:func:`gc.freeze`); whether it ran.

    Why: after the initial sync the controller holds a large, long-lived heap (the informers'
    Services, each provider's remembered state and load balancer bodies: about 120 MB of objects
    at 1,000 Azure Services x 2 ports). CPython's full collection walks all of it, and one struck in
    the middle of whatever ran then: in about half the 1,000-Service bench runs, a node sync took
    0.1-0.27 s longer for it (issue 14). Frozen objects are left out of every later collection,
    so those collections walk only what was made since. Frozen objects still go by reference
    counting as before (JSON bodies, the bulk, have no cycles); only a cycle among them that
    becomes garbage waits for the next settle, which unfreezes everything first and collects it.

    Called when a batch has drained or the workers stopped (:mod:`lbprov.controller.manager`),
    when the batch's transient objects are gone, at most once per :data:`SETTLE_INTERVAL` seconds: a full collection of a
    large heap costs 0.1-1 s of CPU, which the interpreter would have spent anyway, more often.
    """
    interval = SETTLE_INTERVAL
    if interval is None:
        return False
    global _settled_at
    with _settle_lock:
        at = now()
        if _settled_at is not None and at - _settled_at < interval:
            return False
        _settled_at = at
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    return True
