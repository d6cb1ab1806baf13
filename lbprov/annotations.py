"""Typed readers for Service annotations, shared by the providers.

Every reader raises :class:`~lbprov.model.InvalidService` whose field is
``metadata.annotations[<key>]`` and whose message lists the accepted values, so a user sees the same
kind of error whichever cloud they are on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lbprov.intent import parse_bool
from lbprov.model import InvalidService


def annotation_field(key: str) -> str:
    """The field name an error about annotation ``key`` names."""
    return f"metadata.annotations[{key}]"


def get_bool(annotations: Mapping[str, str], key: str, default: bool) -> bool:
    """A boolean as Go's ``strconv.ParseBool`` (upstream) reads it; ``default`` when absent."""
    if key not in annotations:
        return default
    parsed = parse_bool(str(annotations[key]).strip())
    if parsed is None:
        raise InvalidService(annotation_field(key), f"{annotations[key]!r}; accepted values: true, false")
    return parsed


def get_int(annotations: Mapping[str, str], key: str, low: int, high: int, *, unit: str = "") -> int | None:
    """An integer in ``[low, high]``, or ``None`` when absent."""
    if key not in annotations:
        return None
    raw = str(annotations[key]).strip()
    accepted = f"accepted values: an integer {low}-{high}" + (f" ({unit})" if unit else "")
    if not re.fullmatch(r"-?[0-9]+", raw):  # int() would also take "1_000" and "+5"
        raise InvalidService(annotation_field(key), f"{raw!r} is not an integer; {accepted}")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidService(annotation_field(key), f"{value} is out of range; {accepted}")
    return value


def get_pairs(
    annotations: Mapping[str, str], key: str, example: str = "k1=v1,k2=v2"
) -> tuple[tuple[str, str], ...]:
    """A ``k1=v1,k2=v2`` list (tags, label selectors), sorted by key; a repeated key keeps its last value.

    Empty items are skipped; an item without ``=`` or with an empty key is an error. Providers
    check the keys and values against their cloud's own rules afterwards.
    """
    out: dict[str, str] = {}
    for item in (part.strip() for part in str(annotations.get(key, "")).split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise InvalidService(annotation_field(key), f"{item!r} is not key=value; expected {example}")
        if not name:
            raise InvalidService(annotation_field(key), f"{item!r} has an empty key; expected {example}")
        out[name] = value
    return tuple(sorted(out.items()))
