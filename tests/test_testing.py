"""lbprov.testing.wait_for: the one polling helper of every test module (core and providers)."""

from __future__ import annotations

import time

import pytest

from lbprov.testing import wait_for


def test_returns_the_first_truthy_value_and_stops_polling() -> None:
    answers = iter([None, [], {"ip": "192.0.2.1"}, "never asked"])
    calls = []

    def check() -> object:
        calls.append(1)
        return next(answers)

    assert wait_for(check, 5, "an address", interval=0.001) == {"ip": "192.0.2.1"}
    assert len(calls) == 3


def test_at_the_deadline_it_fails_naming_what_was_awaited_and_the_last_value() -> None:
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0\.2s waiting for the ingress \(last: \[\]\)"):
        wait_for(lambda: [], 0.2, "the ingress", interval=0.01)
    assert 0.2 <= time.monotonic() - start < 5


class _NotYet:
    """Falsy, with a long repr (a listing that is not complete yet, say)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NotYet(" + "x" * 1000 + ")"


def test_a_long_last_value_is_cut_in_the_message() -> None:
    with pytest.raises(AssertionError) as info:
        wait_for(_NotYet, 0.01, "a listing", interval=0.005)
    message = str(info.value)
    assert message.startswith("timed out after 0.01s waiting for a listing (last: NotYet(xxx")
    assert message.endswith("...)") and len(message) < 300
