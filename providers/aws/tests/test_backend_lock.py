"""The backend group's lock (apply/nlb_security_groups.py ``BACKEND_LOCK``): new NLBs that attach
the cluster's backend group are created at once, while a release of the group still waits for every
attach in flight. Through boto3 against the strict sandbox; a request is held back until another one
is sent (or a release waits), so these fail on the one plain lock of before (no timing involved).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from lbprov_aws import AWSProvider
from lbprov_aws.apply.nlb_security_groups import BACKEND_LOCK
from lbprov_aws.names import nlb_backend_security_group_name
from lbprov_aws.testing import CLUSTER, AwsView, Svc, build_ref, converge, delete_all, intent_of, node_objects

from lbprov.cloudcalls import CallEvent
from lbprov.provider import SandboxCloud

BACKEND = nlb_backend_security_group_name(CLUSTER)
CREATE_LB = "elbv2:CreateLoadBalancer"


class HoldFirstCreate:
    """Holds the first CreateLoadBalancer sent until ``released()`` is true (at most ``timeout``)."""

    def __init__(self, released: threading.Event, timeout: float = 60.0) -> None:
        self.released, self.timeout = released, timeout
        self.holding = threading.Event()
        self.waited_in_vain = False
        self._seen = 0
        self._lock = threading.Lock()

    def __call__(self, event: CallEvent) -> None:
        if event.result != "sent" or event.operation != CREATE_LB:
            return
        with self._lock:
            self._seen += 1
            first = self._seen == 1
        if first:
            self.holding.set()
            if not self.released.wait(self.timeout):
                self.waited_in_vain = True


def test_new_nlbs_attaching_the_backend_group_are_created_at_once(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    nodes = node_objects(cloud)
    converge(provider, intent_of(provider, Svc(name="first"), nodes))  # the backend group exists
    services = [Svc(name=f"s{i}", ports=[(80, "TCP", 30101 + i)]) for i in range(2)]
    plans = [provider.plan(intent_of(provider, s, nodes)) for s in services]
    second_sent = threading.Event()
    gate = HoldFirstCreate(second_sent)

    def on_second(event: CallEvent) -> None:
        if event.result == "sent" and event.operation == CREATE_LB and gate.holding.is_set():
            second_sent.set()

    provider.calls.listeners[:0] = [on_second, gate]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(provider.apply, plans))
    provider.calls.listeners.clear()
    assert not gate.waited_in_vain, "the second CreateLoadBalancer waited for the first one to end"
    backend = next(sg["GroupId"] for sg in view.security_groups() if sg["GroupName"] == BACKEND)
    for svc in services:
        [lb] = view.nlbs(svc.uid)
        assert backend in lb["SecurityGroups"]
        assert provider.plan(intent_of(provider, svc, nodes)).empty
        converge(provider, intent_of(provider, svc, nodes))  # and a second apply writes nothing


def _wait_for_pending_release(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if BACKEND_LOCK.has_pending_writers:
            return True
        time.sleep(0.005)
    return False


def test_a_release_waits_for_an_nlb_attaching_the_backend_group(
    provider: AWSProvider, cloud: SandboxCloud, view: AwsView
) -> None:
    """The last NLB's delete releases the backend group while a new NLB is being created with it:
    the release waits for the create, then finds the group carried and keeps it."""
    nodes = node_objects(cloud)
    first, second = Svc(name="first"), Svc(name="second", ports=[(80, "TCP", 30081)])
    converge(provider, intent_of(provider, first, nodes))
    release = provider.plan_delete(build_ref(first))  # the last NLB: releases the backend group
    assert [c.name for c in release.changes if c.kind == "security-group"].count(BACKEND) == 1
    attach = provider.plan(intent_of(provider, second, nodes))
    release_waits = threading.Event()
    gate = HoldFirstCreate(release_waits)
    provider.calls.listeners.append(gate)
    with ThreadPoolExecutor(2) as pool:
        attaching = pool.submit(provider.apply, attach)
        assert gate.holding.wait(60.0), "the create was never sent"
        releasing = pool.submit(provider.apply, release)
        if _wait_for_pending_release(60.0):  # the release queued behind the attach in flight
            release_waits.set()
        attaching.result()
        releasing.result()
    provider.calls.listeners.clear()
    assert not gate.waited_in_vain, "the release did not wait for the NLB attaching the group"
    [group] = [sg for sg in view.security_groups() if sg["GroupName"] == BACKEND]
    [lb] = view.nlbs(second.uid)
    assert group["GroupId"] in lb["SecurityGroups"]
    assert provider.plan(intent_of(provider, second, nodes)).empty
    assert provider.plan_delete(build_ref(first)).empty
    delete_all(provider, second)
    assert not [sg for sg in view.security_groups() if sg["GroupName"] == BACKEND]
