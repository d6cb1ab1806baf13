"""The list ``filter`` expressions of the Compute API, as far as clients of this emulator use them.

Supported: ``field = "value"``, ``field != "value"``, ``field:value`` (has), the legacy regular
expression forms ``field eq 'RE2'`` / ``field ne 'RE2'`` (full match), nested fields with dots, and
several parenthesised comparisons joined by ``AND`` or ``OR`` (not mixed). Anything else is answered
``400 Invalid list filter expression``, as the real API does, rather than silently matching all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from lbprov_gcp.sandbox.errors import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_TERM = re.compile(
    r"""^\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*
        (?P<op>=|!=|:|\beq\b|\bne\b)\s*
        (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s()]+)\s*$""",
    re.VERBOSE,
)


def _bad(expr: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid list filter expression '{expr}'.")


def _lookup(resource: dict[str, Any], field: str) -> Any:
    value: Any = resource
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _term(text: str, whole: str) -> Predicate:
    m = _TERM.match(text)
    if not m:
        raise _bad(whole)
    field, op, value = m.group("field"), m.group("op"), _unquote(m.group("value"))
    if op in ("eq", "ne"):
        try:
            pattern = re.compile(value)
        except re.error:
            raise _bad(whole) from None

        def regex(res: dict[str, Any]) -> bool:
            hit = pattern.fullmatch(_as_text(_lookup(res, field))) is not None
            return hit if op == "eq" else not hit

        return regex
    if op == ":":

        def has(res: dict[str, Any]) -> bool:
            got = _lookup(res, field)
            if value == "*":
                return got not in (None, "", [], {})
            if isinstance(got, list):
                return any(_as_text(v) == value for v in got)
            return value in _as_text(got)

        return has

    def compare(res: dict[str, Any]) -> bool:
        got = _lookup(res, field)
        equal = any(_as_text(v) == value for v in got) if isinstance(got, list) else _as_text(got) == value
        return equal if op == "=" else not equal

    return compare


def parse_filter(expr: str | None) -> Predicate:
    """Compile a filter expression into a predicate over resource dicts."""
    if expr is None or not expr.strip():
        return lambda _res: True
    text = expr.strip()
    if not text.startswith("("):
        return _term(text, expr)
    parts = re.split(r"\)\s+(AND|OR)\s+\(", text)
    if not text.endswith(")"):
        raise _bad(expr)
    terms = parts[0::2]
    joins = set(parts[1::2])
    if len(joins) > 1:
        raise _bad(expr)
    terms[0] = terms[0][1:]
    terms[-1] = terms[-1][:-1]
    preds = [_term(t, expr) for t in terms]
    if joins == {"OR"}:
        return lambda res: any(p(res) for p in preds)
    return lambda res: all(p(res) for p in preds)
