"""lbprov.heap.release: glibc's malloc_trim gives the C heap's free pages back."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from lbprov import heap


def _rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_heap_pages_go_back_to_the_system() -> None:
    # 64 MiB in 3,200-byte blocks (glibc's heap, under its mmap threshold), then all freed but the
    # last one, which pins the top of the heap: free() alone cannot shrink it.
    blocks = [bytearray(3200) for _ in range(20_000)]
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])  # touch every page
    last = blocks[-1]
    del blocks
    before = _rss_kib()
    assert heap.release()
    after = _rss_kib()
    assert before - after > 32 * 1024, (before, after)  # most of the 64 MiB is back
    assert len(last) == 3200


def test_disabled_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "ENABLED", False)
    assert heap.release() is False
