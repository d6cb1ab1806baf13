"""A one-line progress indicator on stderr, for plans over many Services.

Planning reads the cloud for every Service, which takes a while on a big cluster; a counter on the
terminal says it is working. It is drawn only when stderr is a terminal (never in logs, pipes or CI
output) and not ``--quiet``, and only for runs of at least :data:`MIN_ITEMS` items, so a small plan
prints nothing extra. The line is erased when done, so stdout stays clean even when both go to the
same terminal.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO

#: Runs smaller than this show no indicator.
MIN_ITEMS = 5
#: Redraw at most this often (seconds).
REDRAW_INTERVAL = 0.1


class Progress:
    """``with Progress(total, "planning") as p: ... p.advance("ns/name")``."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: IO[str] | None = None,
        quiet: bool = False,
        min_items: int = MIN_ITEMS,
        force: bool = False,
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        tty = bool(isatty and isatty())
        self.enabled = (force or tty) and not quiet and total >= min_items
        self.done = 0
        self._last_draw = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        self._draw("", force=True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.clear()

    def advance(self, item: str = "") -> None:
        self.done += 1
        self._draw(item, force=self.done >= self.total)

    def _draw(self, item: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < REDRAW_INTERVAL:
            return
        self._last_draw = now
        pct = int(100 * self.done / self.total) if self.total else 100
        text = f"{self.label} {self.done}/{self.total} ({pct}%)"
        if item:
            text += f" {item}"
        text = text[:100]
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
