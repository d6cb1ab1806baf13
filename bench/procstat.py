"""CPU seconds and resident memory of a process, read from ``/proc/<pid>``.

The scale bench runs the controller, the cloud emulator and the Kubernetes API in separate
processes so that each one's CPU time can be told apart: wall-clock time on a shared machine is
inflated by other load, CPU seconds are not. Linux only (``/proc``), like the rest of the bench.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds the process has used so far (all its threads)."""
    stat = Path(f"/proc/{pid or 'self'}/stat").read_text()
    # Field 2 (comm) may contain spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def memory_kib(pid: int | None = None) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of the process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


@dataclass(frozen=True)
class CPUSnapshot:
    """CPU seconds of several named processes at one moment; subtract two for a phase's use."""

    seconds: dict[str, float]

    @classmethod
    def take(cls, pids: dict[str, int | None]) -> CPUSnapshot:
        return cls({name: cpu_seconds(pid) for name, pid in pids.items()})

    def since(self, earlier: CPUSnapshot) -> dict[str, float]:
        return {name: round(s - earlier.seconds.get(name, 0.0), 2) for name, s in self.seconds.items()}
