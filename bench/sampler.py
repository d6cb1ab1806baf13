"""A wall-clock stack sampler for every thread of a process (the scale bench's emulator).

Why: ``cProfile`` sees only the thread that enabled it, and the emulators serve each request on a
thread of their own. Every ``interval`` seconds this samples ``sys._current_frames()`` and counts,
per function (``file:function``), the samples in which it is on some stack (inclusive) and on top
(self). Idle threads waiting in ``select``/``wait``/``accept`` are left out, so the counts are where
the work goes. ``BENCH_EMULATOR_SAMPLES=<file>`` makes ``bench/scale_cloud.py`` write them as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import CodeType, FrameType

IDLE = ("select", "wait", "accept", "_wait_for_tstate_lock", "poll", "readline", "readinto", "recv_into")


_NAMES: dict[CodeType, str] = {}


def _name(frame: FrameType) -> str:
    code = frame.f_code
    name = _NAMES.get(code)
    if name is None:
        name = _NAMES[code] = f"{code.co_filename.split('site-packages/')[-1]}:{code.co_name}"
    return name


class StackSampler:
    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.inclusive: Counter[str] = Counter()
        self.own: Counter[str] = Counter()
        self.samples = 0
        self.cpu = 0.0  # the sampler's own CPU seconds (counted in the process's CPU figures)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            t0 = time.thread_time()
            for ident, frame in sys._current_frames().items():
                if ident == me or frame.f_code.co_name in IDLE:
                    continue
                self.samples += 1
                self.own[_name(frame)] += 1
                seen: set[str] = set()
                f: FrameType | None = frame
                while f is not None:
                    seen.add(_name(f))
                    f = f.f_back
                self.inclusive.update(seen)
            self.cpu += time.thread_time() - t0

    def stop_and_write(self, path: str, top: int = 60) -> None:
        self._stop.set()
        self._thread.join(5)
        out = {
            "sampler_cpu_seconds": round(self.cpu, 2),
            "samples": self.samples,
            "interval_seconds": self.interval,
            "inclusive": dict(self.inclusive.most_common(top)),
            "self": dict(self.own.most_common(top)),
        }
        Path(path).write_text(json.dumps(out, indent=1))
