"""Deep copies of API objects for the sandbox API server, at a fifth of ``copy.deepcopy``'s CPU.

The store copies objects on every write (a patch is applied to a copy of the stored object, which
is never mutated in place), and ``copy.deepcopy`` was the server's largest single cost: about a
third of its CPU per request in the controller's request mix (bench/kube_api_cost.py). API objects
are JSON data -- dicts, lists, strings, numbers, booleans, None -- which :mod:`marshal` copies in C
with the same result (fresh containers, key order kept, a container met twice stays shared, as
with ``deepcopy``'s memo). Anything marshal cannot take (an object that is not JSON data) falls
back to ``copy.deepcopy``, so the result is always a deep copy.
"""

from __future__ import annotations

import copy
import marshal
from typing import Any, TypeVar, cast

T = TypeVar("T")


def clone(value: T) -> T:
    """A deep copy of ``value`` (JSON data fast, anything else through ``copy.deepcopy``)."""
    try:
        copied = cast(T, marshal.loads(marshal.dumps(cast(Any, value))))
    except ValueError:  # not marshallable: not plain JSON data
        return copy.deepcopy(value)
    return copied
