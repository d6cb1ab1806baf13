"""An API server that accepts connections and never answers must not hold a shutdown through the
event recorder: its stop gives up at its deadline, counts what it left, and returns."""

from __future__ import annotations

import time

from lbprov.controller.events import EventRecorder
from lbprov.kube.client import KubeClient
from lbprov.testing import wait_for

from .conftest import SilentServer


def test_a_silent_api_server_does_not_hang_the_recorders_stop(silent: SilentServer) -> None:
    kube = KubeClient.for_url(silent.url)
    # a post held 300 s (the default read timeout, 15 s, left the bounds below a 5 s margin on a
    # loaded machine, and a post timed out before stop() would be retried, not dropped)
    kube.read_timeout = 300
    recorder = EventRecorder(kube).start()
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "uid": "u"},
    }
    started = time.monotonic()
    for reason in ("EnsuringLoadBalancer", "EnsuredLoadBalancer", "UpdatedLoadBalancer"):
        recorder.record(svc, "Normal", reason, "m")
    # a record() that waited on the post would take the 300 s read timeout
    assert time.monotonic() - started < 60, "recording does not wait for the silent server"
    wait_for(lambda: silent.connections, 60, "the first event's post to reach the server")
    started = time.monotonic()
    assert recorder.stop(0.5) is False
    assert time.monotonic() - started < 60, "stop gave up at its deadline, not at the 300 s read timeout"
    assert recorder.dropped("shutdown") == 2, "the two queued behind the hanging post"
    kube.close()
