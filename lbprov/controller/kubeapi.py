"""What the controller needs from the Kubernetes API, as a Protocol.

The controller is written against this narrow surface (a handful of calls on plain dicts) rather
than against :class:`lbprov.kube.client.KubeClient` directly, so that unit tests can drive the
reconciler with an in-memory fake while the end-to-end tests use the real client over HTTP.
:class:`lbprov.kube.client.KubeClient` satisfies it.
"""

from __future__ import annotations

from typing import Any, Protocol

Obj = dict[str, Any]


class EventSink(Protocol):
    """Where events go (:class:`lbprov.controller.events.EventRecorder` posts to one)."""

    def create_event(
        self,
        obj: Obj,
        *,
        type: str,
        reason: str,
        message: str,
        component: str = ...,
        timestamp: str | None = ...,
        name: str | None = ...,
        combined: bool = ...,
    ) -> bool | None:
        """Record an Event about ``obj``, best effort (aggregating repeats, as client-go does);
        ``timestamp``: when it happened, if not now (an event posted from a queue). False: the
        API server could not be reached or did not answer (the queue's poster tries again, with
        the same ``name``: the new Event's name, so that a create stored unanswered is not made
        twice)."""
        ...


class ControllerKube(EventSink, Protocol):
    def get_service(self, namespace: str, name: str) -> Obj | None:
        """The Service, or ``None`` if it does not exist."""
        ...

    def patch_service(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the Service object (metadata/spec)."""
        ...

    def patch_service_status(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch of the ``status`` subresource."""
        ...


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an API error carries (typed kube errors and ``ApiException`` alike)."""
    for attr in ("status", "code", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def is_conflict(exc: BaseException) -> bool:
    """409: a stale resourceVersion (or AlreadyExists on create)."""
    return http_status(exc) == 409


def is_not_found(exc: BaseException) -> bool:
    return http_status(exc) == 404


class ServiceGone(LookupError):
    """The Service disappeared while it was being reconciled (nothing left to do)."""

    status = 404
