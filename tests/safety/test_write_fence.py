"""The leader-election write fence on every provider, through its real SDK against its emulator.

Once a replica stops leading, the controller fences its providers' writes at the moment another
replica may take the lease (``CloudCalls.fence``; the controller side is in
tests/test_controller_node_sync.py). Each provider's SDK request hook must then refuse the write
unsent, and the error must stay recognisable through the provider's own error handling: an apply
fenced before its first write leaves the cloud untouched, and once fenced nothing more is written.
"""

from __future__ import annotations

import uuid

import pytest

from lbprov.cloudcalls import is_fenced
from lbprov.intent import IntentSettings, build_intent
from lbprov.model import Plan
from lbprov.provider import load_provider
from lbprov.sandbox.demo import node_object
from lbprov.testing import converged


def _service(uid: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": uid, "annotations": {}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]},
    }


def _what(plan: Plan) -> list[tuple[object, ...]]:
    """A plan's changes without their provider data (GCP's carries when it read, for instance)."""
    return [(c.action, c.kind, c.name, c.before, c.after) for c in plan.changes]


@pytest.mark.parametrize("name", ["aws", "gcp", "azure"])
def test_a_fenced_apply_writes_nothing_and_says_why(name: str) -> None:
    cls = load_provider(name)
    with cls.sandbox(["node-1"]) as cloud:
        provider = cls.from_settings(cloud.settings)
        cluster = str(dict(cloud.settings).get("cluster_name") or "sandbox")
        uid = str(uuid.uuid4())
        intent = build_intent(
            _service(uid),
            [node_object(n) for n in cloud.nodes],
            IntentSettings(cluster),
            provider,
        )
        plan = provider.plan(intent)
        assert not plan.empty
        provider.calls.reset()
        provider.calls.fence(0.0, "this replica stopped leading")
        with pytest.raises(Exception) as info:
            provider.apply(plan)
        assert is_fenced(info.value), repr(info.value)
        assert provider.calls.stats.writes == 0
        assert sum(provider.calls.stats.refused.values()) >= 1
        # (moto's account is one per process: other tests' load balancers may be listed too)
        assert [owned for owned in provider.list_owned() if owned.ref.uid == uid] == []
        assert _what(provider.plan(intent)) == _what(plan), "the cloud is as it was"
        provider.calls.unfence()  # leading again: the next sync converges
        converged(provider, intent)
