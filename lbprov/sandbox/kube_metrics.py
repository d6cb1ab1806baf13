"""``GET /metrics`` of the sandbox API server, in the Prometheus text format kube-apiserver uses.

Two of kube-apiserver's own series, with their upstream names and labels, so ``kubectl get --raw
/metrics`` and a scraper see what a real server offers for these questions: how many requests by
verb, resource and code (``apiserver_request_total``) and how many objects are stored per resource
(``apiserver_storage_objects``). Each server has its own registry: tests start many servers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from lbprov.sandbox.kube_store import RESOURCES, Store

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, group, version, resource and HTTP "
            "response code.",
            ["verb", "group", "version", "resource", "code"],
            registry=self.registry,
        )
        self.objects = Gauge(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            ["resource"],
            registry=self.registry,
        )

    def count(self, verb: str, resource: str, code: int) -> None:
        res = RESOURCES.get(resource)
        group = res.group if res else ""
        version = res.version if res else ""
        self.requests.labels(verb, group, version, resource, str(code)).inc()

    def exposition(self, store: Store) -> bytes:
        with store.lock:
            counts = {plural: len(objs) for plural, objs in store.objects.items()}
        for plural, res in RESOURCES.items():
            name = f"{plural}.{res.group}" if res.group else plural
            self.objects.labels(name).set(counts.get(plural, 0))
        return generate_latest(self.registry)


__all__ = ["METRICS_CONTENT_TYPE", "ApiMetrics"]
