"""moto's query-protocol request parser, without a pass over every parameter per structure member.

Why: moto reads each EC2 / ELB / ELBv2 request into its operation's input shape
(``moto.core.parse.QueryParser``). Before it parses a structure at a prefix, ``_gonna_recurse``
asks whether any parameter name starts with that prefix, by iterating over ``request.values``: a
werkzeug ``CombinedMultiDict``, whose key iteration builds a set over its dicts each time, and then
a generator over every key. A ``CreateLoadBalancer`` with its tags asks it for each of its ~40
members, and each ``.get`` of a value walks the combined dicts again. In a CPU profile of the
sandbox's server at 300 creates, moto's parsing was 16% of the server's CPU, most of it there.

:func:`install` patches two methods of ``QueryParser`` (``EC2QueryParser`` inherits both):

* ``_do_parse`` hands the parser ``request.values`` as a plain dict (:class:`Values`): each key with
  the value ``.get`` answers for it on the werkzeug dict (the first dict's first value), so every
  ``.get`` moto makes answers as before, and the keys are also kept sorted;
* ``_gonna_recurse`` answers "no parameter starts with this prefix" by a binary search of the sorted
  keys: the names that start with a prefix are exactly the contiguous run that begins where the
  prefix would be inserted, so the run is empty exactly when the name found there (if any) does
  not start with it. Any other mapping goes to moto's own method.

The parsed parameters are the same (tests/test_sandbox_fast_parse.py parses requests that botocore
serialises, with both parsers). ``LBPROV_SANDBOX_STOCK_MOTO=1`` keeps moto's own parser, as it keeps
moto's response path (at_scale.py).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

#: moto's own methods (set by :func:`install`), for the tests that compare.
ORIGINAL: dict[str, Any] = {}


class Values(dict[str, Any]):
    """``request.values`` as a dict of what ``.get`` answers per key, with the keys sorted."""

    __slots__ = ("sorted_keys",)

    def __init__(self, values: Any) -> None:
        super().__init__((key, values.get(key)) for key in values.keys())  # noqa: SIM118 (a MultiDict's keys)
        self.sorted_keys = sorted(self)


def _do_parse(self: Any, request_dict: dict[str, Any], shape: Any) -> Any:
    """``QueryParser._do_parse`` over :class:`Values` (the same ``.get`` answers, sorted keys)."""
    values = request_dict["values"]
    if not isinstance(values, Values) and hasattr(values, "keys") and hasattr(values, "get"):
        request_dict = {**request_dict, "values": Values(values)}
    return ORIGINAL["_do_parse"](self, request_dict, shape)


def _gonna_recurse(self: Any, query_params: Any, prefix: str) -> bool:
    """``QueryParser._gonna_recurse``: True when no parameter name starts with ``prefix``."""
    if prefix == "":
        return False
    if not isinstance(query_params, Values):
        return ORIGINAL["_gonna_recurse"](self, query_params, prefix)  # type: ignore[no-any-return]
    keys = query_params.sorted_keys
    at = bisect_left(keys, prefix)
    return not (at < len(keys) and keys[at].startswith(prefix))


def install() -> None:
    """Patch moto's ``QueryParser`` (once per process)."""
    if ORIGINAL:
        return
    from moto.core.parse import QueryParser

    ORIGINAL.update(_do_parse=QueryParser._do_parse, _gonna_recurse=QueryParser._gonna_recurse)
    QueryParser._do_parse = _do_parse  # type: ignore[method-assign]
    QueryParser._gonna_recurse = _gonna_recurse  # type: ignore[method-assign]
