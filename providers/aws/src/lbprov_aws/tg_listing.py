"""The read round's listing of target groups, looked up by name prefix without a scan.

Why: a plan finds its Service's target groups by name prefix (lbprov's and upstream's). Filtering
the whole listing for every plan cost CPU that grew with the Services; names are kept sorted, so
a prefix is a binary search. Writes of this process update the listing in place (observe.py
``Reader.after_write``): a created or modified group moves to the end, as a fresh listing
appended after the others would show it, so the order plans see does not change.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lbprov_aws.observe import ObservedTG


class TargetGroupListing:
    """Target groups by ARN, in listing order, with a sorted name index for prefix lookups."""

    def __init__(self, groups: Iterable[ObservedTG] = ()) -> None:
        self._by_arn: dict[str, ObservedTG] = {}
        self._seq: dict[str, int] = {}
        self._next = 0
        for tg in groups:
            self._by_arn[tg.arn] = tg
            self._seq[tg.arn] = self._next
            self._next += 1
        #: (name, ARN), sorted.
        self._names = sorted((tg.name, tg.arn) for tg in self._by_arn.values())
        #: Changes since the listing was read (a cache computed from the listing compares it).
        self.version = 0

    def __iter__(self) -> Iterator[ObservedTG]:
        return iter(list(self._by_arn.values()))  # (a dict keeps insertion order: listing order)

    def __len__(self) -> int:
        return len(self._by_arn)

    def get(self, arn: str) -> ObservedTG | None:
        return self._by_arn.get(arn)

    def with_prefix(self, prefixes: str | tuple[str, ...]) -> list[ObservedTG]:
        """The groups whose name starts with any of ``prefixes``, in listing order."""
        found: dict[str, ObservedTG] = {}
        for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
            i = bisect.bisect_left(self._names, (prefix, ""))
            while i < len(self._names) and self._names[i][0].startswith(prefix):
                arn = self._names[i][1]
                found[arn] = self._by_arn[arn]
                i += 1
        return sorted(found.values(), key=lambda tg: self._seq[tg.arn])

    def put(self, tg: ObservedTG) -> None:
        """Add a group, or replace the one of its ARN (which then moves to the end)."""
        self.remove(tg.arn)
        self._by_arn[tg.arn] = tg
        self._seq[tg.arn] = self._next
        self._next += 1
        bisect.insort(self._names, (tg.name, tg.arn))
        self.version += 1

    def remove(self, arn: str) -> None:
        tg = self._by_arn.pop(arn, None)
        if tg is None:
            return
        del self._seq[arn]
        i = bisect.bisect_left(self._names, (tg.name, arn))
        if i < len(self._names) and self._names[i] == (tg.name, arn):
            del self._names[i]
        self.version += 1

    def touched(self) -> None:
        """A group of the listing changed in place (its tags)."""
        self.version += 1
