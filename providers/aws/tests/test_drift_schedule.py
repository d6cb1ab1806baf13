"""The periodic resync's sweep of deep checks (drift_schedule.py): bounded per period, and every
Service covered within K periods (issue 14: the budget met in every period, not on average)."""

from __future__ import annotations

import math
import random

import pytest
from lbprov_aws.drift_schedule import DriftSchedule
from lbprov_aws.observe import ReadRound, drift_slot


def _uids(n: int, tag: str = "u") -> list[str]:
    return [f"{tag}-{i:05d}-5f0c" for i in range(n)]


@pytest.mark.parametrize("n", [1, 7, 9, 10, 300, 1000, 1001])
def test_each_period_deep_checks_at_most_ceil_n_over_k_and_every_service_within_k(n: int) -> None:
    k = 9
    schedule = DriftSchedule()
    roster = _uids(n)
    periods = [schedule.next_due(roster, k) for _ in range(4 * k)]
    assert all(len(due) <= math.ceil(n / k) for due in periods), [len(d) for d in periods]
    for start in range(len(periods) - k + 1):  # every K consecutive periods, from any phase
        assert set().union(*periods[start : start + k]) == set(roster), start


def test_the_old_fixed_slot_was_over_the_budget_in_some_period() -> None:
    """What the sweep fixes: a slot by hash puts more than ceil(N/K) Services in some period."""
    k, roster = 9, _uids(300)
    per_slot = [sum(1 for u in roster if drift_slot(u, k) == s) for s in range(k)]
    assert max(per_slot) > math.ceil(len(roster) / k), per_slot


def test_services_added_and_removed_keep_their_place_and_are_covered() -> None:
    """Services removed never delay the others; each one added ahead delays them by one place."""
    k = 4
    rng = random.Random(14)
    schedule = DriftSchedule()
    roster = set(_uids(200))
    last_checked = dict.fromkeys(roster, 0)
    for period in range(1, 60):
        added = set(_uids(rng.randint(0, 3), tag=f"p{period}"))
        removed = set(rng.sample(sorted(roster), rng.randint(0, 3)))
        roster = (roster | added) - removed
        for uid in added:
            last_checked[uid] = period
        due = schedule.next_due(roster, k)
        assert due <= roster and len(due) <= math.ceil(len(roster) / k)
        for uid in due:
            last_checked[uid] = period
        # <= 3 added per period, >= 50 checked per period: at most one more period than K.
        assert all(period - last_checked[uid] < k + 1 for uid in roster), period


def test_a_round_uses_the_sweep_for_its_roster_and_a_slot_for_other_keys() -> None:
    rnd = ReadRound(periods=lambda: 5, k=3)
    assert not rnd.due("anything")  # not a periodic round
    rnd.drift_check()
    rnd.roster = frozenset({"a", "b", "c"})
    rnd.due_keys = frozenset({"b"})
    assert [rnd.due(u) for u in "abc"] == [False, True, False]
    outside = [u for u in _uids(30) if rnd.due(u)]
    assert outside == [u for u in _uids(30) if (5 - drift_slot(u, 3)) % 3 == 0]
