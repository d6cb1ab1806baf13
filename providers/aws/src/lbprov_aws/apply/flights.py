"""Single flight of the cluster's shared NLB backend group and its node rules within one process.

Why: at the start of a create, every worker's plan is made before any apply has created the
cluster's backend group, so each plan lists "create the backend group" and "admit it in each node
group". Before, every apply then sent those writes: the first one made the group, and the other
nine (at 10 workers) got ``InvalidGroup.Duplicate`` and ``InvalidPermission.Duplicate`` (three per
node group), each a failed call counted as an error, recovered by a describe: 36 errors per 1,000
creates in the scale bench.

Now the first apply's writes are the flight the others join: :class:`Flights` records, under
``BACKEND_LOCK``'s write lock (apply/nlb_security_groups.py), what this process made (the group's ID, each node
rule) and when. An apply whose plan was made *before* that (``Plan.data["planned_at"]``, taken
before the plan read anything) uses what was made instead of writing it again: its plan could not
have seen it. A plan made *after* it and still planning the write saw the cloud without it (the
read round mirrors our own writes, observe.py), so the thing is gone (deleted by someone else) and
is written again: a record never hides a deletion from a later plan. This process's own release of
the group forgets its records.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class Flights:
    """What this process made, by key, with the monotonic time it was made. Callers hold
    ``BACKEND_LOCK``'s write lock, so that the check and the write it saves are one step."""

    def __init__(self) -> None:
        self._made: dict[Hashable, tuple[str, float]] = {}

    def made(self, key: Hashable, value: str = "") -> None:
        """Record that ``key`` was made (or found made) now."""
        self._made[key] = (value, time.monotonic())

    def joined(self, key: Hashable, planned_at: float | None) -> str | None:
        """The value of ``key`` when it was made after the plan was made (the plan could not see
        it), else None: the write goes ahead. A plan without ``planned_at`` never joins."""
        entry = self._made.get(key)
        if entry is None or planned_at is None or planned_at >= entry[1]:
            return None
        return entry[0]

    def forget(self, group_id: str) -> None:
        """Drop every record of ``group_id`` (this process released it)."""
        self._made = {k: v for k, v in self._made.items() if v[0] != group_id and group_id not in _parts(k)}


def _parts(key: Hashable) -> tuple[object, ...]:
    return key if isinstance(key, tuple) else (key,)
