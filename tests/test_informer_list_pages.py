"""The informer's list trims each page as it arrives (``KubeClient._list``'s ``transform``): a
controller that starts on 10,000 Services holds the untrimmed objects of one page at most, not
all of them until the list ends. The pages come from a scripted transport whose items are
weakly referenced, so the test sees which untrimmed objects are still alive when the next page
is fetched."""

from __future__ import annotations

import gc
import weakref
from dataclasses import dataclass, field
from typing import Any

from lbprov.kube.client import Gone, KubeClient
from lbprov.kube.informer import Informer

PAGE = 4
PAGES = 3


class Full(dict[str, Any]):
    """An untrimmed object as the API server sends it (a dict subclass can be weakly referenced)."""


def full_service(i: int) -> Full:
    return Full(
        metadata={
            "name": f"s{i}",
            "namespace": "default",
            "uid": f"uid-{i}",
            "resourceVersion": str(100 + i),
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}] * 20,
        },
        spec={"type": "LoadBalancer", "ports": [{"port": 80}]},
        status={"loadBalancer": {}},
    )


@dataclass
class PagedTransport:
    """Answers ``GET .../services`` with :data:`PAGES` pages of :data:`PAGE` items, following the
    ``continue`` token; before answering a page it records how many earlier pages' untrimmed
    items are still alive."""

    sent: list[weakref.ref[Full]] = field(default_factory=list)
    alive_at_fetch: list[int] = field(default_factory=list)
    gone_once: bool = False

    def request(self, method: str, path: str, *, query: Any = None, **_: Any) -> Page:
        assert method == "GET" and path.endswith("/services"), (method, path)
        gc.collect()
        self.alive_at_fetch.append(sum(ref() is not None for ref in self.sent))
        token = (query or {}).get("continue")
        if token == "p1" and self.gone_once:
            self.gone_once = False
            return Page(self, 410, [], None)
        index = int(token[1:]) if token else 0
        items = [full_service(index * PAGE + i) for i in range(PAGE)]
        self.sent += [weakref.ref(item) for item in items]
        return Page(self, 200, items, f"p{index + 1}" if index + 1 < PAGES else None)


@dataclass
class Page:
    transport: PagedTransport
    status: int
    items: list[Full]
    token: str | None
    reason: str = "OK"

    @property
    def data(self) -> bytes:
        return b'{"kind":"Status","reason":"Expired","message":"continue token expired","code":410}'

    def json(self) -> dict[str, Any]:
        items, self.items = self.items, []
        return {"items": items, "metadata": {"resourceVersion": "77", "continue": self.token}}


def informer_on(transport: PagedTransport) -> Informer:
    client = KubeClient.for_url("http://127.0.0.1:9")
    client.transport = transport  # type: ignore[assignment]
    return Informer(client, "services")


def test_list_trims_each_page_before_fetching_the_next() -> None:
    transport = PagedTransport()
    informer = informer_on(transport)
    informer._relist()  # the list path of start(): one relist
    # Fetching page k: no untrimmed item of pages < k is alive (the old code kept them all: 4, 8).
    assert transport.alive_at_fetch == [0, 0, 0]
    gc.collect()
    assert [ref for ref in transport.sent if ref() is not None] == []
    cached = informer.list()
    assert len(cached) == PAGE * PAGES
    assert all(type(obj) is dict and "managedFields" not in obj["metadata"] for obj in cached)
    assert {obj["kind"] for obj in cached} == {"Service"}
    assert informer.resource_version == "77" and informer.synced


def test_relist_after_410_trims_per_page_too() -> None:
    transport = PagedTransport(gone_once=True)
    informer = informer_on(transport)
    try:
        informer._relist()
    except Gone:
        pass
    else:
        raise AssertionError("an expired continue token must raise Gone")
    informer._relist()  # the informer's answer to 410: list again from the start
    assert transport.alive_at_fetch[-3:] == [0, 0, 0]
    assert len(informer.list()) == PAGE * PAGES
