"""The asynchronous event recorder (lbprov/controller/events.py): posted through the real client to
the sandbox API server, in order, aggregated; never blocking the caller; flushed on stop."""

from __future__ import annotations

import json
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from lbprov.controller import events as events_module
from lbprov.controller.events import EventRecorder, SyncRecorder, reference
from lbprov.kube.client import KubeClient
from lbprov.observability import Metrics
from lbprov.sandbox.kube_api import KubeAPIServer
from lbprov.testing import HeldPort, wait_for


@pytest.fixture
def api() -> Iterator[KubeAPIServer]:
    with KubeAPIServer() as server:
        yield server


def service(kube: KubeClient, name: str) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
    }
    return kube.create_service("default", body)


def events_of(kube: KubeClient, name: str) -> list[dict[str, Any]]:
    return kube.list_events("default", field_selector=f"involvedObject.name={name}")


class BlockingSink:
    """An API server that takes an event only when told to: ``entered`` is set while a post waits."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.posted: list[str] = []

    def create_event(self, obj: dict[str, Any], *, reason: str, **_: Any) -> None:
        self.entered.set()
        assert self.release.wait(60)
        self.posted.append(reason)


def test_recorded_events_reach_the_api_server_in_order_with_their_own_time(api: KubeAPIServer) -> None:
    kube = KubeClient.for_url(api.url)
    svc = service(kube, "web")
    recorder = EventRecorder(kube).start()
    try:
        for reason in ("EnsuringLoadBalancer", "EnsuredLoadBalancer", "UpdatedLoadBalancer"):
            recorder.record(svc, "Normal", reason, f"{reason} message")
        assert recorder.flush(5)
    finally:
        recorder.stop()
    events = events_of(kube, "web")
    # Names are "<object>.<nanoseconds in hex>" of the post: their order is the order they were sent.
    events.sort(key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[1], 16))
    assert [e["reason"] for e in events] == [
        "EnsuringLoadBalancer",
        "EnsuredLoadBalancer",
        "UpdatedLoadBalancer",
    ]
    first = events[0]
    assert first["involvedObject"]["uid"] == svc["metadata"]["uid"]
    assert first["involvedObject"]["kind"] == "Service" and first["source"]["component"] == "lbprov"
    assert first["type"] == "Normal" and first["count"] == 1


def test_a_repeated_event_is_aggregated_into_one_with_a_count(api: KubeAPIServer) -> None:
    kube = KubeClient.for_url(api.url)
    svc = service(kube, "web")
    recorder = EventRecorder(kube).start()
    for _ in range(3):
        recorder.record(svc, "Warning", "SyncLoadBalancerFailed", "Error syncing load balancer: boom")
    assert recorder.stop(5)
    (event,) = events_of(kube, "web")
    assert event["count"] == 3 and event["type"] == "Warning"


def test_the_event_keeps_the_time_it_was_recorded_not_the_time_it_was_posted(
    api: KubeAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = KubeClient.for_url(api.url)
    svc = service(kube, "web")
    recorder = EventRecorder(kube)  # not started: the event waits in the queue
    monkeypatch.setattr(events_module, "timestamp_now", lambda: "2020-01-02T03:04:05Z")
    recorder.record(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
    monkeypatch.undo()
    recorder.start()
    assert recorder.stop(5)
    (event,) = events_of(kube, "web")
    assert event["firstTimestamp"] == event["lastTimestamp"] == "2020-01-02T03:04:05Z"


def test_record_returns_at_once_and_a_full_queue_drops_and_counts() -> None:
    sink = BlockingSink()
    metrics = Metrics()
    recorder = EventRecorder(
        sink, max_queued=2, registry=metrics.registry, spam_burst=4, clock=lambda: 0.0
    ).start()
    obj = {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}}
    recorder.record(obj, "Normal", "First", "m")
    assert sink.entered.wait(60), "the first event is being posted (and hangs)"
    started = time.monotonic()
    for i in range(5):
        recorder.record(obj, "Normal", f"Next{i}", "m")
    # the post hangs for 60 s: a record() that waited for it would take that long (0.5 s, the
    # bound before, is one a loaded machine can pass without any wait)
    assert time.monotonic() - started < 30, "record() never waits for the API server"
    assert recorder.queued() == 3  # one being posted, two queued
    assert recorder.dropped("queue_full") == 3
    assert recorder.dropped("spam") == 0, "events dropped for a full queue take no token"
    text = metrics.render().decode()
    assert 'lbprov_events_dropped_total{reason="queue_full"} 3.0' in text
    assert "lbprov_events_queued 3.0" in text
    sink.release.set()
    assert recorder.flush(5)
    recorder.record(obj, "Normal", "Last", "m")  # the 4th token: the dropped ones took none
    assert recorder.stop(5)
    assert sink.posted == ["First", "Next0", "Next1", "Last"], "the kept events, in order"


def test_stop_flushes_what_is_queued() -> None:
    posted: list[str] = []

    class SlowSink:
        def create_event(self, obj: dict[str, Any], *, reason: str, **_: Any) -> None:
            time.sleep(0.01)  # a round trip to the API server
            posted.append(reason)

    recorder = EventRecorder(SlowSink()).start()
    reasons = [f"R{i}" for i in range(20)]
    for reason in reasons:
        recorder.record({"metadata": {"name": "web", "uid": "u"}}, "Normal", reason, "m")
    assert recorder.stop(5) is True
    assert posted == reasons
    assert recorder.dropped("shutdown") == 0


def test_stop_gives_up_at_its_deadline_and_counts_what_it_left() -> None:
    sink = BlockingSink()
    recorder = EventRecorder(sink).start()
    for i in range(4):
        recorder.record({"metadata": {"name": "web", "uid": "u"}}, "Normal", f"R{i}", "m")
    assert sink.entered.wait(60)
    started = time.monotonic()
    assert recorder.stop(0.2) is False
    assert time.monotonic() - started < 30, "gave up at its deadline, not after the 60 s post"
    assert recorder.dropped("shutdown") == 3, "the three behind the hanging post"
    recorder.record({"metadata": {"name": "web", "uid": "u"}}, "Normal", "Late", "m")
    assert recorder.dropped("shutdown") == 4, "a stopped recorder takes nothing"
    sink.release.set()


def test_an_object_past_its_burst_is_rate_limited_then_refilled() -> None:
    now = [0.0]
    posted: list[str] = []

    class Sink:
        def create_event(self, obj: dict[str, Any], *, reason: str, **_: Any) -> None:
            posted.append(f"{obj['metadata']['name']}:{reason}")

    recorder = EventRecorder(Sink(), spam_burst=3, spam_qps=0.5, clock=lambda: now[0]).start()
    loud, quiet = {"metadata": {"name": "loud", "uid": "1"}}, {"metadata": {"name": "quiet", "uid": "2"}}
    for i in range(5):
        recorder.record(loud, "Warning", f"F{i}", "m")
    recorder.record(quiet, "Normal", "Q", "m")  # another object has its own bucket
    now[0] = 2.0  # one token back (0.5 per second)
    recorder.record(loud, "Warning", "Later", "m")
    recorder.record(loud, "Warning", "TooSoon", "m")
    assert recorder.stop(5)
    assert posted == ["loud:F0", "loud:F1", "loud:F2", "quiet:Q", "loud:Later"]
    assert recorder.dropped("spam") == 3


def test_spam_filter_keys_by_the_uid_object_and_forgets_the_least_recently_used() -> None:
    """Memory at 10,000 Services (issue 14): a bucket is keyed by the UID string the informer's
    cache already holds (no tuple per object), the bound holds, the recently used one is kept, and
    an object without a UID still gets a bucket of its own."""
    spam = events_module._SpamFilter(burst=2, qps=0.0, entries=3, clock=lambda: 0.0)
    uid = "".join(["5f0c", "-uid"])  # a string object of its own, as a parsed answer's
    refs = [
        {"kind": "Service", "metadata": {"name": f"s{i}", "namespace": "ns", "uid": f"u{i}"}}
        for i in range(3)
    ]
    refs[0]["metadata"]["uid"] = uid
    for ref in refs:
        assert spam.allow(ref)
    assert any(key is uid for key in spam._buckets), "the key is the object's own UID string"
    assert spam.allow(refs[0])  # s0 used again: now the most recent; s1 is the oldest
    assert not spam.allow(refs[0]), "burst 2 spent"
    no_uid = {"kind": "Service", "metadata": {"name": "plain", "namespace": "ns"}}
    assert spam.allow(no_uid)
    assert len(spam) == 3
    assert "u1" not in spam._buckets, "the least recently used is forgotten"
    assert not spam.allow(refs[0]), "s0 was kept, its bucket still empty"
    assert spam.allow({"kind": "Service", "metadata": {"name": "plain", "namespace": "other"}})


def test_the_queue_holds_a_copy_of_the_reference_not_the_callers_object() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "7",
            "labels": {"a": "b"},
        },
        "spec": {"ports": [1, 2, 3]},
    }
    ref = reference(obj)
    obj["metadata"]["name"] = "changed"
    assert ref == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7"},
    }


def test_the_sync_recorder_posts_before_it_returns(api: KubeAPIServer) -> None:
    kube = KubeClient.for_url(api.url)
    svc = service(kube, "web")
    SyncRecorder(kube).record(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
    assert [e["reason"] for e in events_of(kube, "web")] == ["EnsuringLoadBalancer"]


def test_a_sink_that_raises_does_not_stop_the_thread() -> None:
    posted: list[str] = []

    class Flaky:
        def create_event(self, obj: dict[str, Any], *, reason: str, **_: Any) -> None:
            if reason == "Bad":
                raise RuntimeError("a bug in the sink")
            posted.append(reason)

    recorder = EventRecorder(Flaky()).start()
    for reason in ("Bad", "Good"):
        recorder.record({"metadata": {"name": "web", "uid": "u"}}, "Normal", reason, "m")
    wait_for(lambda: posted == ["Good"], 60, "the event after the failing one")
    assert recorder.stop(5)


def test_flush_waits_for_what_was_recorded_before_it_not_for_a_steady_stream() -> None:
    """Each post records another event (a steady stream): flush() returns once the events recorded
    before it are posted. It used to wait for an empty queue, so a busy controller's flush (the
    scale bench's wait-idle) ran to its deadline."""
    recorder: EventRecorder
    posted: list[str] = []
    obj = {"metadata": {"name": "web", "uid": "u"}}

    class StreamSink:
        def create_event(self, obj_: dict[str, Any], *, reason: str, **_: Any) -> None:
            time.sleep(0.005)
            posted.append(reason)
            recorder.record(obj, "Normal", f"After{len(posted)}", "m")

    recorder = EventRecorder(StreamSink(), spam_burst=10_000, clock=lambda: 0.0).start()
    for i in range(3):
        recorder.record(obj, "Normal", f"Before{i}", "m")
    started = time.monotonic()
    assert recorder.flush(60) is True
    assert time.monotonic() - started < 30, "not at its deadline: the stream does not hold it"
    assert posted[:3] == ["Before0", "Before1", "Before2"]
    recorder.stop(0.5)


# -- retries while the API server cannot be reached (client-go's recordToSink) ---------------------


class CountingSink:
    """The real client, counting its posts (and their answers: False = not reached)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.answers: list[bool] = []

    def create_event(self, obj: dict[str, Any], **kw: Any) -> bool:
        stored = self.kube.create_event(obj, **kw)
        self.answers.append(stored)
        return stored


def _ref(name: str, namespace: str = "default") -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}}


def test_an_event_recorded_while_the_api_server_is_down_is_posted_once_it_is_up() -> None:
    # held, not freed, while the server is down: no other process can serve there meanwhile
    port = HeldPort()
    sink = CountingSink(KubeClient.for_url(port.url))
    recorder = EventRecorder(sink, retry_seconds=0.2, jitter=lambda: 0.5).start()
    try:
        recorder.record(_ref("web"), "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        recorder.record(_ref("web"), "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
        wait_for(lambda: len(sink.answers) >= 2, 60, "two tries while the server is down")
        assert set(sink.answers) == {False} and recorder.queued() == 2, "held, in order, not dropped"
        with KubeAPIServer(port=port.port) as api:
            kube = KubeClient.for_url(api.url)
            assert recorder.flush(60)
            assert [e["reason"] for e in events_of(kube, "web")] == [
                "EnsuringLoadBalancer",
                "EnsuredLoadBalancer",
            ]
            assert sink.answers[-2:] == [True, True] and recorder.dropped("unreachable") == 0
    finally:
        recorder.stop()
        port.close()


def test_an_error_the_server_answers_is_not_retried(api: KubeAPIServer) -> None:
    sink = CountingSink(KubeClient.for_url(api.url))
    recorder = EventRecorder(sink, retry_seconds=0.01).start()
    try:
        recorder.record(_ref("web", namespace="no-such-namespace"), "Normal", "EnsuringLoadBalancer", "x")
        assert recorder.flush(10)
        assert sink.answers == [True], "a 404 is the server's answer: given up at once, as client-go"
    finally:
        recorder.stop()


def test_an_event_is_given_up_after_its_attempts_and_counted() -> None:
    with HeldPort() as down:
        sink = CountingSink(KubeClient.for_url(down.url))
        recorder = EventRecorder(sink, post_attempts=3, retry_seconds=0.01).start()
        try:
            recorder.record(_ref("web"), "Normal", "EnsuringLoadBalancer", "x")
            assert recorder.flush(60)
            assert sink.answers == [False, False, False] and recorder.dropped("unreachable") == 1
        finally:
            recorder.stop()


def test_a_stop_ends_the_wait_between_tries_at_once() -> None:
    with HeldPort() as down:
        sink = CountingSink(KubeClient.for_url(down.url))
        recorder = EventRecorder(sink, retry_seconds=60.0, jitter=lambda: 1.0).start()
        recorder.record(_ref("web"), "Normal", "EnsuringLoadBalancer", "x")
        wait_for(lambda: sink.answers == [False], 60, "the first try")
        started = time.monotonic()
        assert recorder.stop(timeout=0.5) is False
        # any bound well under the 60 s wait tells the two apart; 30 s leaves a loaded machine room
        assert time.monotonic() - started < 30.0, "not the 60 s wait"
        wait_for(lambda: recorder.dropped("shutdown") == 1, 60, "the event counted as not recorded")
        assert sink.answers == [False]


class _EventsAPI(BaseHTTPRequestHandler):
    """A bare API server's Event handling for the lost-answer tests: JSON in and out, quiet."""

    def _answer(self, status: int, out: dict[str, Any]) -> None:
        data = json.dumps(out).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up on this answer

    def _body(self) -> dict[str, Any]:
        return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def _hold_until_the_client_tries_again(self) -> None:
        """Answer only after the client gave up on this request: its next try's connection is
        waiting to be accepted (the server takes one request at a time). A fixed 1 s sleep
        against the client's read timeout let a slow handler thread be overtaken by the retry."""
        assert select.select([self.server.socket], [], [], 60)[0], "the client never tried again"

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _recorder_on(handler: type[_EventsAPI]) -> Iterator[tuple[EventRecorder, CountingSink]]:
    """A recorder posting through a real client (3 s read timeout) to ``handler``'s server.

    The server handles one request at a time, in the order they came (each on a connection of
    its own: HTTP/1.0): a try after a lost answer is looked at only once the first one is stored,
    however late a loaded machine runs the server (with a thread per request, a first request's
    thread that had not run within the client's read timeout let the retry store the event first).
    The read timeout bounds the answers that are not held back: 0.3 s, as it was, lost the answer
    to a plain POST on a loaded machine now and then."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kube = KubeClient.for_url(f"http://127.0.0.1:{server.server_address[1]}")
        kube.read_timeout = 3.0
        sink = CountingSink(kube)
        recorder = EventRecorder(sink, retry_seconds=0.05, jitter=lambda: 0.5).start()
        try:
            yield recorder, sink
        finally:
            recorder.stop()
    finally:
        server.shutdown()


def test_a_try_after_a_lost_answer_finds_the_stored_event_instead_of_making_a_second() -> None:
    """The review's repro: the API server stores the first POST but answers after the client's read
    timeout; the next try (same name, as client-go) gets AlreadyExists, which counts as stored."""
    stored: list[str] = []

    class Handler(_EventsAPI):
        def do_POST(self) -> None:
            body = self._body()
            name = body["metadata"]["name"]
            if name in stored:
                self._answer(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists", "message": name})
                return
            stored.append(name)
            if len(stored) == 1:
                self._hold_until_the_client_tries_again()  # stored; the answer comes too late
            self._answer(201, body)

    with _recorder_on(Handler) as (recorder, sink):
        recorder.record(_ref("web"), "Normal", "EnsuredLoadBalancer", "Ensured load balancer")
        assert recorder.flush(60)
    assert sink.answers == [False, True] and len(stored) == 1
    assert recorder.dropped("unreachable") == 0


def test_a_retried_aggregation_patch_after_a_lost_answer_counts_the_repeat_once() -> None:
    """A repeat of an event patches an absolute ``count`` (the remembered count + 1, remembered only
    once the patch is answered), as client-go's correlator does: the API server stores the first
    PATCH but answers after the client's read timeout, the next try sends the same count, and the
    Event ends at count 2, not 3."""
    events: dict[str, dict[str, Any]] = {}
    patches: list[dict[str, Any]] = []

    class Handler(_EventsAPI):
        def do_POST(self) -> None:
            body = self._body()
            events[body["metadata"]["name"]] = body
            self._answer(201, body)

        def do_PATCH(self) -> None:
            patch = self._body()
            event = events[self.path.rsplit("/", 1)[-1]]
            event.update(patch)  # a merge patch of two top-level fields
            patches.append(patch)
            if len(patches) == 1:
                self._hold_until_the_client_tries_again()  # stored; the answer comes too late
            self._answer(200, event)

    with _recorder_on(Handler) as (recorder, sink):
        for _ in range(2):
            recorder.record(_ref("web"), "Warning", "SyncLoadBalancerFailed", "quota exceeded")
        assert recorder.flush(60)
    assert sink.answers == [True, False, True], "posted, patch answer lost, patch again"
    assert [p["count"] for p in patches] == [2, 2], "the same absolute count both times"
    (event,) = events.values()
    assert event["count"] == 2
