"""``lbprov.identity_memo``: the last answer kept for the same first argument object."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from lbprov.identity_memo import by_identity, distinct


def test_the_same_object_is_answered_from_the_memo_an_equal_one_is_computed_again() -> None:
    calls: list[tuple[Any, ...]] = []

    @by_identity
    def size(items: tuple[int, ...], scale: int) -> int:
        calls.append(items)
        return len(items) * scale

    a = (1, 2, 3)
    b = tuple([1, 2, 3])  # equal, another object
    assert a is not b
    assert size(a, 2) == 6 and size(a, 2) == 6
    assert len(calls) == 1
    assert size(b, 2) == 6  # not the same object: computed
    assert len(calls) == 2
    assert size(b, 3) == 9  # the same object, another argument: computed
    assert len(calls) == 3


def test_an_exception_is_not_remembered() -> None:
    answers = iter([ValueError("first"), 5])

    @by_identity
    def flaky(items: tuple[int, ...]) -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    key = (1,)
    with pytest.raises(ValueError, match="first"):
        flaky(key)
    assert flaky(key) == 5


def test_cache_clear_forgets_the_memo_and_the_wrapped_cache() -> None:
    calls = 0

    @by_identity
    @functools.lru_cache(maxsize=4)
    def double(items: tuple[int, ...]) -> tuple[int, ...]:
        nonlocal calls
        calls += 1
        return items * 2

    key = (7,)
    double(key)
    double(tuple([7]))  # equal: the lru_cache answers
    assert calls == 1
    double.cache_clear()  # type: ignore[attr-defined]
    double(key)
    assert calls == 2


def test_distinct_keeps_each_object_once_in_first_seen_order() -> None:
    a, b = (1,), tuple([1])
    assert distinct([a, b, a, a, b]) == [a, b]
    assert [id(x) for x in distinct([a, b, a])] == [id(a), id(b)]
