"""The shared-LB writer's algorithm on an in-memory store.

The emulator tests (test_concurrency.py) prove the writer against ARM semantics through the SDK;
these pin the algorithm's edge cases that the emulator cannot stage on demand: a merged PUT that
ARM rejects (the batch is split so one bad Service cannot fail the others), an LB that keeps
changing (bounded 412 retries), and the merge rules themselves.
"""

from __future__ import annotations

import copy
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from lbprov_azure import names
from lbprov_azure.lbwriter import LBDelta, PreconditionFailed, SharedLBWriter, WriteRejected, merge

from lbprov.model import OwnershipConflict
from lbprov.testing import wait_for

CLUSTER = "k"
CLUSTER_ID = "5d1c0a4e-0000-4000-8000-000000000001"
TEMPLATE = {
    "location": "westeurope",
    "sku": {"name": "Standard"},
    "tags": names.lb_tags(CLUSTER, CLUSTER_ID),
    "properties": {
        "frontendIPConfigurations": [],
        "backendAddressPools": [{"name": CLUSTER, "properties": {}}],
        "probes": [],
        "loadBalancingRules": [],
    },
}


class MemoryStore:
    """An LB store with ETags; rejects any body holding a frontend named 'bad' (like a 400)."""

    def __init__(self, body=None, *, churn: int = 0) -> None:
        self.body = copy.deepcopy(body)
        self.lock = threading.Lock()
        self.puts = 0
        self.churn = churn  # how many times a foreign writer changes the LB right before our PUT

    def get(self):
        with self.lock:
            return copy.deepcopy(self.body)

    def put(self, body, *, etag):
        with self.lock:
            if self.churn:
                self.churn -= 1
                self.body["etag"] = str(uuid.uuid4())
            current = self.body["etag"] if self.body else None
            if etag != current:
                raise PreconditionFailed("412")
            if any(f["name"] == "bad" for f in body["properties"]["frontendIPConfigurations"]):
                raise WriteRejected("400 InvalidResourceReference")
            # the body before the count: a test that waits for ``puts`` reads ``body`` without the lock
            self.body = {**copy.deepcopy(body), "etag": str(uuid.uuid4())}
            self.puts += 1
            return copy.deepcopy(self.body)

    def delete(self, *, etag):
        with self.lock:
            if not self.body or etag != self.body["etag"]:
                raise PreconditionFailed("412")
            self.body = None


def delta(base: str, *, token: str | None = None, join=True) -> LBDelta:
    return LBDelta(
        service=token or base,
        base=base,
        upserts=(("frontendIPConfigurations", {"name": base, "properties": {}}),) if join else (),
        deletes=() if join else (("frontendIPConfigurations", base),),
        join=join,
        template=TEMPLATE,
    )


def fronts(body):
    return sorted(f["name"] for f in body["properties"]["frontendIPConfigurations"])


def test_concurrent_submissions_all_land_in_few_puts():
    store = MemoryStore()
    writer = SharedLBWriter(store, CLUSTER, "k", cluster_id=CLUSTER_ID, window=0.005)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: writer.submit(delta(f"s{i:02d}")), range(40)))
    assert fronts(store.body) == [f"s{i:02d}" for i in range(40)]
    assert store.puts < 40 and writer.stats.batches == store.puts


def test_a_rejected_merged_put_is_split_so_only_the_bad_service_fails():
    store = MemoryStore()
    writer = SharedLBWriter(store, CLUSTER, "k", cluster_id=CLUSTER_ID, window=0.05)
    results: dict[str, object] = {}

    def run(base, announcement):
        try:
            results[base] = writer.submit(delta(base), announcement)
        except WriteRejected as exc:
            results[base] = exc

    # announced: the leader waits for all three, so they share one batch
    threads = [threading.Thread(target=run, args=(b, writer.announce())) for b in ("good1", "bad", "good2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert isinstance(results["bad"], WriteRejected)
    assert fronts(store.body) == ["good1", "good2"]
    assert writer.stats.isolations == 1 and store.puts == 2


def test_a_leader_waits_for_applies_announced_before_its_batch_not_after():
    """With syncs that wait without a worker slot, new applies announce all the time: a leader that
    waited for those too would hold every batch for ``max_wait``. It waits only for announcements
    made before it took the lead; a later one goes in the next batch."""
    store = MemoryStore()
    writer = SharedLBWriter(store, CLUSTER, "k", cluster_id=CLUSTER_ID, window=0, max_wait=120)
    early = writer.announce()
    threads = [threading.Thread(target=writer.submit, args=(delta("a"),))]
    threads[0].start()
    # the leader waits for ``early`` (announced before it led) ... (``leads``: its cut is taken; a
    # wait on ``submissions`` alone let ``late`` be announced before the cut, now and then, under load)
    wait_for(lambda: writer.stats.leads == 1, 10, "the leader waits")
    late = writer.announce()  # ... but not for this one, announced after it took the lead
    threads.append(threading.Thread(target=writer.submit, args=(delta("b"), early)))
    threads[1].start()  # the early apply arrives: it joins the leader's batch, which goes at once
    try:
        wait_for(lambda: store.puts == 1, 10, "the batch written while a later announcement is pending")
        assert fronts(store.body) == ["a", "b"]
    finally:
        writer.withdraw(late)
        for t in threads:
            t.join(10)


def test_an_lb_that_keeps_changing_gives_up_after_bounded_412s():
    store = MemoryStore(None)
    writer = SharedLBWriter(store, CLUSTER, "k", cluster_id=CLUSTER_ID, window=0, max_conflicts=2)
    writer.submit(delta("a"))
    store.churn = 10
    with pytest.raises(PreconditionFailed, match="kept changing"):
        writer.submit(delta("b"))
    assert writer.stats.conflicts == 3
    store.churn = 1
    writer.submit(delta("b"))  # one 412, re-read, success
    assert fronts(store.body) == ["a", "b"]


def test_merge_never_touches_parts_not_named_for_the_service_and_deletes_an_emptied_lb():
    lb = {**copy.deepcopy(TEMPLATE), "etag": "e"}
    lb["properties"]["frontendIPConfigurations"] = [{"name": "foreign", "properties": {}}]
    m = merge(lb, [delta("a")], CLUSTER, "k")
    assert m.action == "update" and fronts(m.body) == ["a", "foreign"]
    m2 = merge(
        {**m.body, "etag": "f"},
        [LBDelta(service="a", base="a", deletes=(("frontendIPConfigurations", "foreign"),), join=False)],
        CLUSTER,
        "k",
    )
    assert fronts(m2.body) == ["a", "foreign"]  # a delete naming a foreign part is ignored
    m3 = merge({**m.body, "etag": "f"}, [delta("a", join=False)], CLUSTER, "k")
    assert m3.action == "update" and fronts(m3.body) == ["foreign"]  # foreign part keeps the LB
    emptied = {**merge(None, [delta("a")], CLUSTER, "k").body, "etag": "g"}
    only = merge(emptied, [delta("a", join=False)], CLUSTER, "k", CLUSTER_ID)
    assert only.action == "delete"
    # deciding to delete from cloud state needs the identity: unknown or another one keeps it
    assert merge(emptied, [delta("a", join=False)], CLUSTER, "k").action == "update"
    assert merge(emptied, [delta("a", join=False)], CLUSTER, "k", "other-id").action == "update"


def test_merge_refuses_a_part_claimed_by_name_but_not_recorded_and_foreign_lbs():
    lb = {**copy.deepcopy(TEMPLATE), "etag": "e"}
    lb["properties"]["frontendIPConfigurations"] = [{"name": "a", "properties": {}}]
    m = merge(lb, [delta("a"), delta("b")], CLUSTER, "k")
    assert isinstance(m.errors[0], OwnershipConflict) and 1 not in m.errors
    assert fronts(m.body) == ["a", "b"]
    foreign = {**lb, "tags": {"owner": "someone"}}
    m = merge(foreign, [delta("c")], CLUSTER, "k")
    assert m.action == "none" and isinstance(m.errors[0], OwnershipConflict)


def test_service_map_packs_into_few_tags():
    tokens = [uuid.uuid4().hex for _ in range(250)]
    tags = names.with_services({"x": "y"}, tokens)
    assert names.services_of(tags) == set(tokens)
    assert len(tags) <= 50 - 3  # leaves room for the cluster tags under Azure's 50-tag limit
    assert all(len(v) <= 256 for v in tags.values())


def test_service_tokens_follow_the_tags_values_not_the_dict():
    """names.service_tokens is cached by the packed values: the same dict changed in place (a merge
    writes the Service map back into the body's tags) gives the new map, never the cached one."""
    tags = names.with_services(names.lb_tags(CLUSTER, CLUSTER_ID), ["a1", "b2"])
    assert names.service_tokens(tags) == {"a1", "b2"}
    tags.update(names.with_services(tags, ["a1", "c3"]))
    assert names.service_tokens(tags) == {"a1", "c3"}
    assert names.service_tokens(None) == frozenset() and names.services_of(tags) == {"a1", "c3"}
    many = [f"a{i:031x}" for i in range(300)]  # packed into several tags
    tags = names.with_services(tags, many)
    assert len([k for k in tags if k.startswith(names.SERVICES_TAG_PREFIX)]) > 1
    assert names.service_tokens(tags) == set(many)


def test_a_submission_joins_the_batch_of_the_leader_its_announcement_held(monkeypatch):
    """The announcement is spent and the ticket pending under one hold of the lock. When the two
    were separate (withdraw, then append), a leader woken by the withdrawal could take its batch in
    between, and the announced apply went out in a PUT of its own. A slow ``withdraw`` (here 0.3 s
    after it returns, standing for a preempted thread) shows the gap on the old code."""
    store = MemoryStore()
    writer = SharedLBWriter(store, CLUSTER, "k", cluster_id=CLUSTER_ID, window=0, max_wait=120)
    early = writer.announce()
    leader = threading.Thread(target=writer.submit, args=(delta("a"),))
    leader.start()
    wait_for(lambda: writer.stats.leads == 1, 60, "the leader waits for the announced apply")
    withdraw = writer.withdraw

    def slow_withdraw(announcement):
        withdraw(announcement)
        threading.Event().wait(0.3)

    monkeypatch.setattr(writer, "withdraw", slow_withdraw)
    joined = threading.Thread(target=writer.submit, args=(delta("b"), early))
    joined.start()
    leader.join(60)
    joined.join(60)
    assert not leader.is_alive() and not joined.is_alive()
    assert store.puts == 1 and fronts(store.body) == ["a", "b"]
