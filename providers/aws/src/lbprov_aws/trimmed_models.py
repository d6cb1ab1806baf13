"""The controller's botocore service models, trimmed to the operations lbprov_aws calls.

Why: botocore keeps the whole service model of every client it makes, in its data loader's cache
and in each client's class (one method per operation). EC2's model has about 750 operations and
4,000 shapes; lbprov_aws calls 14 of them (operations.py). The ec2 client alone cost the controller
about 24 MB of RSS at startup (the issue 14 measurement; ``bench/aws_client_memory.py`` measures it).

How: :class:`TrimmingLoader` is the process-wide botocore data loader of the provider's sessions
(client.py). When a session asks it for the ``service-2`` model of ``ec2``, ``elbv2`` or ``elb``, it
loads the installed botocore's own model as usual, keeps only the operations of
:data:`lbprov_aws.operations.OPERATIONS` and the shapes they reach (inputs, outputs, errors, and
their members), drops the ``documentation`` strings (only docstrings use them), caches that and lets
the full model go. The model is never edited by hand and never written to disk, so it always matches
the installed botocore, and the read-only root filesystem of the Deployment is no obstacle (a model
directory on a botocore search path would need one written at install time, per botocore version).

Every other model (endpoints, paginators, retries, other services) loads unchanged, and so does
every session that is not the provider's (moto and the sandbox's strict layer read full models).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.loaders import Loader  # type: ignore[import-untyped]

from lbprov_aws.operations import OPERATIONS

#: botocore's service name of each client prefix of operations.py.
SERVICES = {"ec2": "ec2", "elbv2": "elbv2", "elb": "elb"}


def operations_by_service() -> dict[str, frozenset[str]]:
    """botocore service name -> the operations lbprov_aws calls on it (from operations.py)."""
    out: dict[str, set[str]] = {service: set() for service in SERVICES.values()}
    for name in OPERATIONS:
        prefix, _, op = name.partition(":")
        out[SERVICES[prefix]].add(op)
    return {service: frozenset(ops) for service, ops in out.items()}


def _refs(shape: Mapping[str, Any]) -> Iterator[str]:
    """The names of the shapes one shape refers to (structure members, list member, map key and
    value)."""
    for member in (shape.get("members") or {}).values():
        yield member["shape"]
    for key in ("member", "key", "value"):
        if key in shape:
            yield shape[key]["shape"]


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        # A member may be named "documentation" (its value is then a dict): only the text goes.
        return {
            k: _without_docs(v) for k, v in node.items() if not (k == "documentation" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_without_docs(v) for v in node]
    return node


def trim(model: Mapping[str, Any], operations: frozenset[str]) -> dict[str, Any]:
    """``model`` (a botocore ``service-2`` dict) with only ``operations`` and the shapes they
    reach, without documentation. An operation the model lacks is an error: operations.py and the
    installed botocore disagree, and the client would fail later, less clearly."""
    missing = operations - set(model["operations"])
    if missing:
        raise ValueError(f"the installed botocore's model has no operation {sorted(missing)}")
    ops = {name: model["operations"][name] for name in sorted(operations)}
    shapes: Mapping[str, Any] = model["shapes"]
    todo = [
        ref["shape"]
        for op in ops.values()
        for ref in (op.get("input"), op.get("output"), *op.get("errors", []))
        if ref
    ]
    kept: set[str] = set()
    while todo:
        name = todo.pop()
        if name in kept:
            continue
        kept.add(name)
        todo.extend(_refs(shapes[name]))
    out = {k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")}
    out["operations"] = _without_docs(ops)
    out["shapes"] = {name: _without_docs(shapes[name]) for name in sorted(kept)}
    return out


def _holds(cached: Any, model: Any) -> bool:
    return cached is model or (isinstance(cached, tuple) and any(item is model for item in cached))


class TrimmingLoader(Loader):  # type: ignore[misc]
    """A botocore data loader whose ``service-2`` models of ec2, elbv2 and elb are trimmed (see
    the module docstring); everything else it loads as botocore's own loader does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keep = operations_by_service()
        self._trimmed: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._trim_lock = threading.Lock()

    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        if type_name != "service-2" or service_name not in self._keep:
            return super().load_service_model(service_name, type_name, api_version)
        key = (service_name, api_version)
        with self._trim_lock:
            if (found := self._trimmed.get(key)) is None:
                full = super().load_service_model(service_name, type_name, api_version)
                # botocore's instance cache now holds the full model (load_service_model's result,
                # and load_data_with_path's (data, path)): keep the trimmed one instead.
                for k in [k for k, v in self._cache.items() if _holds(v, full)]:
                    del self._cache[k]
                found = self._trimmed[key] = trim(full, self._keep[service_name])
            return found
