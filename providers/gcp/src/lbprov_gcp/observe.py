"""The provider's reads, either per Service (server-side filters) or batched for a read round.

Outside a round every plan asks the API for exactly what it needs (``name eq "(a|b)"`` filters),
which is cheapest for one Service. Inside :meth:`GCPProvider.read_round` each collection is listed
once, unfiltered, and every plan of the round is answered from memory: a resync of N Services
costs a handful of list calls instead of ~8 N. Collections an ``apply`` wrote to are dropped from
the round, so a later plan in the same round reads them afresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lbprov_gcp.compute import Compute

Json = dict[str, Any]


def _alternation(names: Iterable[str]) -> str:
    return "(" + "|".join(sorted(set(names))) + ")"


class ReadRound:
    """Listings cached for the length of one round."""

    def __init__(self) -> None:
        self.lists: dict[str, list[Json]] = {}
        self.groups: dict[str, dict[str, Json]] = {}
        self.members: dict[tuple[str, str], list[str]] = {}

    def invalidate(self, collection: str, zone: str | None = None) -> None:
        if collection == "instanceGroups":
            self.groups.clear()
            if zone is None:
                self.members.clear()
            else:
                for key in [k for k in self.members if k[0] == zone]:
                    del self.members[key]
        else:
            self.lists.pop(collection, None)


class Reader:
    def __init__(self, compute: Compute) -> None:
        self.compute = compute
        self.round: ReadRound | None = None

    def _all(self, collection: str) -> list[Json]:
        assert self.round is not None
        if collection not in self.round.lists:
            self.round.lists[collection] = self.compute.list_items(collection)
        return self.round.lists[collection]

    def all(self, collection: str) -> list[Json]:
        """Every resource of a collection in the region (global for firewalls)."""
        if self.round is not None:
            return self._all(collection)
        return self.compute.list_items(collection)

    def named(self, collection: str, names: Iterable[str]) -> dict[str, Json]:
        wanted = set(names)
        if self.round is not None:
            return {r["name"]: r for r in self._all(collection) if r["name"] in wanted}
        found = self.compute.list_items(collection, f'name eq "{_alternation(wanted)}"')
        return {r["name"]: r for r in found if r["name"] in wanted}

    def addresses(self, name: str, ip: str | None) -> list[Json]:
        """The address called ``name`` and any address holding ``ip``."""
        if self.round is not None:
            return [a for a in self._all("addresses") if a["name"] == name or (ip and a.get("address") == ip)]
        query = f'(name = "{name}") OR (address = "{ip}")' if ip else f'name = "{name}"'
        return self.compute.list_items("addresses", query)

    def mentioning(self, collection: str, text: str) -> list[Json]:
        """Resources whose description contains ``text`` (callers check ownership exactly)."""
        if self.round is not None:
            return [r for r in self._all(collection) if text in (r.get("description") or "")]
        return self.compute.list_items(collection, f'description eq ".*{text}.*"')

    def groups(self, name: str) -> dict[str, Json]:
        if self.round is None:
            return self.compute.instance_groups(name)
        if name not in self.round.groups:
            self.round.groups[name] = self.compute.instance_groups(name)
        return self.round.groups[name]

    def members(self, zone: str, name: str) -> list[str]:
        if self.round is None:
            return self.compute.group_members(zone, name)
        key = (zone, name)
        if key not in self.round.members:
            self.round.members[key] = self.compute.group_members(zone, name)
        return list(self.round.members[key])

    def wrote(self, collection: str, zone: str | None = None) -> None:
        if self.round is not None:
            self.round.invalidate(collection, zone)
