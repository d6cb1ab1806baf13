"""One copy of each repeated name and short value in what a long-lived cache keeps.

Why: a JSON or XML parser makes fresh strings for every answer: each of 10,000 cached Services holds
its own ``"metadata"``, ``"protocol"``, ``"TCP"``, ``"LoadBalancer"``; each remembered target group
its own ``"deregistration_delay.timeout_seconds"`` and ``"false"``. Those copies were about half of
a cached Service's bytes (``tests/test_interning.py``). :func:`compact` returns the value with every
dict key and every string up to ``max_len`` characters interned (``sys.intern``: one shared object,
freed again when nothing uses it), so they cost once per process. Longer strings (ARNs, hostnames,
annotation bodies) are left alone: they are mostly unique, and interning them would only add an entry
to the interning table. (Measured on a one-port Service as the informer keeps it: 4,576 bytes
without, 2,559 / 2,382 bytes with ``max_len`` 16 / 64.)
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar, cast

T = TypeVar("T")


def compact(value: T, max_len: int = 64) -> T:
    """A copy of ``value`` (dicts, lists and tuples of JSON-like values) with its dict keys and its
    strings of at most ``max_len`` characters interned; other values are kept as they are."""
    return cast(T, _compact(value, max_len))


def _compact(value: Any, max_len: int) -> Any:
    if isinstance(value, dict):
        return {(sys.intern(k) if type(k) is str else k): _compact(v, max_len) for k, v in value.items()}
    if isinstance(value, list):
        # Sized exactly: a comprehension (or json's parser) over-allocates as it appends, 88 bytes
        # for a one-item list instead of 64; a cached Service holds about five such lists.
        out = [None] * len(value)
        for i, v in enumerate(value):
            out[i] = _compact(v, max_len)
        return out
    if isinstance(value, tuple):
        return tuple(_compact(v, max_len) for v in value)
    if type(value) is str and len(value) <= max_len:
        return sys.intern(value)
    return value
