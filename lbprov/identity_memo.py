"""Remember a function's last answer for the same first argument *object*.

Why: every Service's intent holds the very same targets tuple while the nodes do not change
(:class:`lbprov.intent.NodeTargetsMemo`), and a node sync or a read round asks the same question of
it once per Service. ``functools.lru_cache`` answers it too, but hashes its key on every call: a
tuple of 21 frozen dataclasses is 21 field hashes, which at 1,000 Services was most of a GCP node
sync's planning CPU (issue 14). Comparing identity first costs nothing; the object is held with the
answer, so its ``id`` cannot be reused by another object while it is remembered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, Concatenate, ParamSpec, TypeVar

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")


def by_identity(fn: Callable[Concatenate[A, P], R]) -> Callable[Concatenate[A, P], R]:
    """``fn`` with its last answer remembered for the same first argument object and equal other
    arguments. Only for pure functions of immutable first arguments (tuples of frozen dataclasses);
    an exception is not remembered. Thread-safe: the memo is one reference, replaced whole."""
    last: list[tuple[Any, tuple[Any, ...], dict[str, Any], Any] | None] = [None]

    @functools.wraps(fn)
    def remembered(first: A, /, *args: P.args, **kwargs: P.kwargs) -> R:
        memo = last[0]
        if memo is not None and memo[0] is first and memo[1] == args and memo[2] == kwargs:
            return memo[3]  # type: ignore[no-any-return]
        answer = fn(first, *args, **kwargs)
        last[0] = (first, args, kwargs, answer)
        return answer

    def cache_clear() -> None:
        """Forget the last answer, and the wrapped function's cache if it has one (tests)."""
        last[0] = None
        inner = getattr(fn, "cache_clear", None)
        if inner is not None:
            inner()

    setattr(remembered, "cache_clear", cache_clear)  # noqa: B010  (a function's attribute)
    return remembered


def distinct(values: Iterable[A]) -> list[A]:
    """``values`` without repeats of the same object (by identity, in first-seen order): the targets
    tuples of a node sync's intents are nearly always one object, compared once instead of per Service."""
    return list({id(v): v for v in values}.values())
