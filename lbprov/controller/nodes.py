"""Node sync: a change of the eligible node set re-enqueues every managed Service, debounced.

As upstream (``shouldSyncUpdatedNode``), only what changes a load balancer's targets counts: a node
added or removed, its eligibility (:func:`lbprov.intent.node_exclusion_reason`: exclude label,
``ToBeDeletedByClusterAutoscaler`` taint, deletion, no providerID) or its ``spec.providerID``.
Heartbeat-only updates (status conditions every few seconds) are ignored.

Debouncing: the first relevant change starts a timer of ``debounce`` seconds; changes inside the
window ride along; when it fires, every managed Service is queued once. A node rollout of 50 nodes
thus costs one re-plan per Service, not fifty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from lbprov.intent import node_exclusion_reason

log = logging.getLogger("lbprov.controller.nodes")


def node_signature(node: Mapping[str, Any] | None) -> tuple[bool, str] | None:
    """What about a node matters to load balancers: (eligible, providerID); None if absent."""
    if node is None:
        return None
    return (node_exclusion_reason(node) is None, str((node.get("spec") or {}).get("providerID") or ""))


class NodeSync:
    """Turns node informer events into a debounced "re-enqueue every managed Service"."""

    def __init__(self, enqueue_all: Callable[[], int], *, debounce: float = 1.0) -> None:
        self.enqueue_all = enqueue_all
        self.debounce = debounce
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._stopped = False
        #: Events before the node cache is synced (the informer's initial list) are ignored: the
        #: controller plans every Service once it starts anyway.
        self.armed = False
        self.triggers = 0  # times the managed Services were re-enqueued (for tests and logs)

    # informer handlers
    def on_add(self, node: Mapping[str, Any]) -> None:
        self._changed(None, node)

    def on_update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self._changed(old, new)

    def on_delete(self, node: Mapping[str, Any]) -> None:
        self._changed(node, None)

    def _changed(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        if not self.armed or node_signature(old) == node_signature(new):
            return
        name = ((new or old or {}).get("metadata") or {}).get("name")
        log.debug("node set changed", extra={"reason": f"node {name}"})
        with self._lock:
            if self._stopped or self._timer is not None:
                return
            self._timer = threading.Timer(self.debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if self._stopped:
                return
            self.triggers += 1
        n = self.enqueue_all()
        log.info("node set changed: re-enqueued %d Services", n)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
