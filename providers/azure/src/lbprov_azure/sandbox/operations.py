"""Long-running operations and api-versions, as the ARM resource-provider contract defines them.

* ``api-version`` (ARM RPC, "api-version" query parameter; azure-rest-api-specs
  ``specification/network/resource-manager/Microsoft.Network/stable/<version>``): a malformed value
  is 400 ``InvalidApiVersionParameter``; a well-formed one Microsoft.Network never published is 400
  ``NoRegisteredProviderFound``.
* Asynchronous operations (ARM RPC "Asynchronous Operations"; azure-mgmt-network's operations are
  declared ``x-ms-long-running-operation`` with ``final-state-via: azure-async-operation`` for PUT and
  ``location`` for DELETE): a PUT answers 200/201 with ``provisioningState`` and an
  ``Azure-AsyncOperation`` URL; a DELETE answers 202 with ``Azure-AsyncOperation`` and ``Location``.
  The status URL reports ``InProgress`` until the operation ends, then ``Succeeded`` or ``Failed``
  with an ``error``; the ``Location`` URL answers 202 until the end, then 204 (or the error). Poll
  URLs carry the api-version of the request that started the operation. While in progress the
  resource shows ``provisioningState: Updating`` / ``Deleting``; a failed one ``Failed``.

The emulator keeps operations ``InProgress`` for ``lro_seconds`` (0: they end at once) and fails the
ones :meth:`Operations.fail_operations` asks for, so that a client's polling, timeout and failure
handling can be tested.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lbprov_azure.sandbox.base import JSON, NETWORK, ArmError, Response
from lbprov_azure.sandbox.shared import ArmStateParts

#: Microsoft.Network's published api-versions (azure-rest-api-specs, stable/), newest last.
API_VERSIONS = frozenset(
    [
        "2015-06-15",
        "2016-03-30",
        "2016-06-01",
        "2016-09-01",
        "2016-12-01",
        "2017-03-01",
        "2017-06-01",
        "2017-08-01",
        "2017-09-01",
        "2017-10-01",
        "2017-11-01",
        "2018-01-01",
        "2018-02-01",
        "2018-04-01",
        "2018-06-01",
        "2018-07-01",
        "2018-08-01",
        "2018-10-01",
        "2018-11-01",
        "2018-12-01",
        "2019-02-01",
        "2019-04-01",
        "2019-06-01",
        "2019-07-01",
        "2019-08-01",
        "2019-09-01",
        "2019-11-01",
        "2019-12-01",
        "2020-03-01",
        "2020-04-01",
        "2020-05-01",
        "2020-06-01",
        "2020-07-01",
        "2020-08-01",
        "2020-11-01",
        "2021-02-01",
        "2021-03-01",
        "2021-05-01",
        "2021-08-01",
        "2022-01-01",
        "2022-05-01",
        "2022-07-01",
        "2022-09-01",
        "2022-11-01",
        "2023-02-01",
        "2023-04-01",
        "2023-05-01",
        "2023-06-01",
        "2023-09-01",
        "2023-11-01",
        "2024-01-01",
        "2024-03-01",
        "2024-05-01",
        "2024-07-01",
        "2024-10-01",
        "2025-01-01",
        "2025-03-01",
        "2025-05-01",
        "2025-07-01",
        "2025-09-01",
        "2026-01-01",
        "2026-03-01",
    ]
)
DEFAULT_API_VERSION = "2026-03-01"
_API_VERSION = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")
#: How long a client should wait between polls of an operation still in progress.
POLL_AFTER_MS = 20


@dataclass
class Operation:
    id: str
    ready_at: float
    resource_id: str | None
    deleting: bool
    error: JSON | None = None
    done: bool = False


@dataclass
class _Failure:
    method: str | None
    path: str | None
    code: str
    message: str
    times: int


@dataclass
class _Request(threading.local):
    method: str = ""
    path: str = ""
    api_version: str = DEFAULT_API_VERSION
    extra: dict[str, Any] = field(default_factory=dict)


class Operations(ArmStateParts):
    """Mixed into :class:`~lbprov_azure.sandbox.state.ArmState`."""

    def _init_operations(self) -> None:
        self.lro_seconds = 0.0
        self.operations: dict[str, Operation] = {}
        #: the operations not done yet: settle() runs on every request, and scanning every operation
        #: ever started made each request O(operations) (O(N^2) over a 1,000-Service bench)
        self._in_progress: dict[str, Operation] = {}
        self._failures: list[_Failure] = []
        self._request = _Request()

    # -- test controls -----------------------------------------------------------------------

    def fail_operations(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        code: str = "InternalServerError",
        message: str = "An error occurred.",
        times: int = 1,
    ) -> None:
        """The next ``times`` long operations matching ``method`` / ``path`` (a regex searched in the
        lowercased path) end ``Failed`` with ``code`` (a DELETE that fails deletes nothing)."""
        with self.lock:
            self._failures.append(_Failure(method, path, code, message, times))

    def finish_operations(self) -> None:
        """End every operation still in progress now (as if its time had come)."""
        with self.lock:
            for op in self._in_progress.values():
                op.ready_at = min(op.ready_at, time.monotonic())
        self.settle()

    def clear_operations(self) -> None:
        with self.lock:
            self.lro_seconds = 0.0
            self._failures.clear()

    # -- api-version ------------------------------------------------------------------------------

    def check_api_version(self, value: str, path: str) -> None:
        if not _API_VERSION.match(value):
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{value}' is invalid. The supported versions are '{', '.join(sorted(API_VERSIONS))}'.",
            )
        if value not in API_VERSIONS:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location '{self.location}' and API version "
                f"'{value}' for type '{NETWORK}'. The supported api-versions are '{', '.join(sorted(API_VERSIONS))}'.",
            )

    def begin_request(self, method: str, path: str, api_version: str) -> None:
        self._request.method, self._request.path = method, path
        self._request.api_version = api_version if api_version in API_VERSIONS else DEFAULT_API_VERSION

    # -- starting an operation --------------------------------------------------------------------

    def take_failure(self) -> JSON | None:
        """The error the current request's operation will end with, if one was asked for."""
        method, path = self._request.method, self._request.path.lower()
        with self.lock:
            for f in self._failures:
                if f.times == 0:
                    continue
                if f.method and f.method.upper() != method:
                    continue
                if f.path and not re.search(f.path, path):
                    continue
                f.times -= 1
                return {"code": f.code, "message": f.message}
        return None

    def _op_url(self, kind: str, op: str) -> str:
        return (
            f"{self.base_url}/subscriptions/{self.subscription}/providers/{NETWORK}/locations/"
            f"{self.location}/{kind}/{op}?api-version={self._request.api_version}"
        )

    def _accepted(
        self,
        status: int,
        body: JSON | None,
        rid: str | None = None,
        failure: Any = ...,
        deleting: bool = False,
    ) -> Response:
        """A long-running operation's first answer (see the module doc)."""
        error = self.take_failure() if failure is ... else failure
        if not self.async_operations and error is None:
            if body is None:
                return Response(status if status != 202 else 204, None)
            with self.lock:
                return Response.encoded(status if status != 202 else 204, body)
        op = Operation(str(uuid.uuid4()), time.monotonic() + self.lro_seconds, rid, deleting, error)
        with self.lock:
            self.operations[op.id] = op
            if not op.done:
                self._in_progress[op.id] = op
            if rid and not deleting and (self.lro_seconds > 0 or error is not None):
                self._set_provisioning_state(rid, "Updating")
        headers = {"Azure-AsyncOperation": self._op_url("operations", op.id)}
        if status == 202:
            headers["Location"] = self._op_url("operationResults", op.id)
        if self.lro_seconds > 0:
            headers["retry-after-ms"] = str(POLL_AFTER_MS)
        if body is None:
            self.settle()
            return Response(status, None, headers)
        with self.lock:  # written before anything can change ``body`` (it may be the stored value)
            answer = Response.encoded(
                status,
                {**body, "properties": {**(body.get("properties") or {}), "provisioningState": "Updating"}},
                headers,
            )
        self.settle()
        return answer

    # -- polling ----------------------------------------------------------------------------------

    def settle(self) -> None:
        """End the operations whose time has come (their resources' provisioningState changes)."""
        now = time.monotonic()
        with self.lock:
            for op in list(self._in_progress.values()):
                if op.done:
                    del self._in_progress[op.id]
                    continue
                if op.ready_at > now:
                    continue
                op.done = True
                del self._in_progress[op.id]
                if op.resource_id and not op.deleting:
                    self._set_provisioning_state(op.resource_id, "Failed" if op.error else "Succeeded")

    def operation_status(self, op_id: str) -> Response:
        self.settle()
        op = self.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        if not op.done:
            return Response(
                200, {"name": op_id, "status": "InProgress"}, {"retry-after-ms": str(POLL_AFTER_MS)}
            )
        if op.error is not None:
            return Response(200, {"name": op_id, "status": "Failed", "error": dict(op.error)})
        return Response(200, {"name": op_id, "status": "Succeeded"})

    def operation_result(self, op_id: str) -> Response:
        self.settle()
        op = self.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        if not op.done:
            return Response(
                202,
                None,
                {"Location": self._op_url("operationResults", op_id), "retry-after-ms": str(POLL_AFTER_MS)},
            )
        if op.error is not None:
            raise ArmError(400, str(op.error["code"]), str(op.error["message"]))
        return Response(204, None)

    def _set_provisioning_state(self, rid: str, value: str) -> None:
        found = self._find_by_id(rid)
        if found is not None:
            found.setdefault("properties", {})["provisioningState"] = value

    def _find_by_id(self, rid: str) -> JSON | None:
        parsed = self._parse_id(rid)
        if parsed is None:
            return None
        rg, rtype, name, rest = parsed
        top: JSON | None = self.resources[rtype].get((rg.lower(), name.lower()))
        if top is None or not rest:
            return top
        if len(rest) != 2:
            return None
        props = top.get("properties") or {}
        field_ = next((k for k in props if k.lower() == rest[0].lower()), None)
        return (
            next(
                (c for c in props.get(field_, []) if str(c.get("name", "")).lower() == rest[1].lower()), None
            )
            if field_
            else None
        )
