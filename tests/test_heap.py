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


_MMAP_PROBE = """
import ctypes, sys
from lbprov import heap

class Info(ctypes.Structure):  # glibc's struct mallinfo2 (2.33+)
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
big = bytearray(8 * 1024 * 1024)  # served by mmap; freeing it raises a dynamic threshold to 8 MiB
del big
if sys.argv[1] == "configure":
    assert heap.configure()
before = libc.mallinfo2().hblks
blocks = [bytearray(512 * 1024) for _ in range(4)]
print(libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
@pytest.mark.parametrize(("how", "mapped"), [("configure", 4), ("default", 0)])
def test_configure_keeps_large_blocks_out_of_the_heap(how: str, mapped: int) -> None:
    """After one large block freed, glibc's default carves later large blocks from the heap (0 of
    them mapped); with :func:`heap.configure`, each is its own mapping, unmapped when freed."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MMAP_PROBE, how], capture_output=True, text=True, check=True)
    assert int(out.stdout) == mapped, out.stderr


def test_configure_disabled_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "ENABLED", False)
    assert heap.configure() is False
