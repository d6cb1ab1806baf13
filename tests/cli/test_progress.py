"""The progress indicator: drawn on a terminal for many Services, never in pipes or with --quiet."""

from __future__ import annotations

import io

from lbprov.progress import MIN_ITEMS, Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_on_a_terminal_and_erases_itself() -> None:
    stream = Tty()
    with Progress(10, "planning", stream=stream) as p:
        for i in range(10):
            p.advance(f"ns/svc{i}")
    text = stream.getvalue()
    assert "planning 10/10 (100%) ns/svc9" in text
    assert text.endswith("\r")  # the line was cleared: nothing left for stdout to collide with


def test_hidden_when_not_a_terminal_quiet_or_few_items() -> None:
    for stream, quiet, total in (
        (io.StringIO(), False, 50),
        (Tty(), True, 50),
        (Tty(), False, MIN_ITEMS - 1),
    ):
        with Progress(total, "planning", stream=stream, quiet=quiet) as p:
            for _ in range(total):
                p.advance("x")
        assert stream.getvalue() == ""
