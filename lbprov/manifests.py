"""Services and Nodes from manifest files, for ``lbprov plan -f``.

Sources are files, directories (every ``*.yaml``, ``*.yml`` and ``*.json`` below them, in sorted
order, so output is stable) or ``-`` for standard input. A file may hold several YAML documents and
``List`` objects (``kind: List`` or ``ServiceList``/``NodeList``, as ``kubectl get -o yaml`` prints
them); their items are expanded.

Files are not a cluster, so two things a Service read from a file usually lacks are decided here:

* **No UID** (``metadata.uid`` is set by the API server): the Service gets a deterministic
  placeholder UID derived from its namespace and name (:func:`placeholder_uid`). Load-balancer names
  derive from the UID, so such a Service's plan is all creates -- which is what applying the manifest
  to a cluster would do, since the API server assigns a fresh UID. Plans note the placeholder.
* **No NodePorts** (allocated by the API server): :func:`missing_node_ports` explains it, and the
  Service is reported as invalid with a message telling to set ``nodePort`` in the manifest or to plan
  against the cluster; the other Services are still planned.

Objects of other kinds (Deployments next to the Service, say) are skipped and counted; a document
that is not a Kubernetes object at all (no ``kind``, a bare list or string) is an error naming the
file and the document's position.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

#: Namespace of the placeholder UIDs (uuid5 of "lbprov-manifest:<namespace>/<name>").
PLACEHOLDER_NAMESPACE = uuid.UUID("6f3c1f7e-4c1b-5d0a-9a59-6c6270726f76")
#: Annotation that :func:`assign_placeholder_uid` sets, so later steps can tell the UID is made up.
PLACEHOLDER_ANNOTATION = "lbprov.io/placeholder-uid"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(ValueError):
    """A manifest source cannot be read or holds something that is not a Kubernetes object."""


@dataclass
class Manifests:
    """The objects found in a set of sources, split by kind."""

    services: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    #: ``Kind/name`` of the objects that are neither Services nor Nodes (skipped).
    skipped: list[str] = field(default_factory=list)


def placeholder_uid(namespace: str, name: str) -> str:
    """A deterministic UID for a Service that has none (same name, same UID, every run)."""
    return str(uuid.uuid5(PLACEHOLDER_NAMESPACE, f"lbprov-manifest:{namespace}/{name}"))


def _iter_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        yield from found
    else:
        yield path


def _read(source: str, stdin: IO[str] | None) -> list[tuple[str, str]]:
    """``(label, text)`` for every file a source names."""
    if source == "-":
        stream = stdin if stdin is not None else sys.stdin
        return [("<stdin>", stream.read())]
    path = Path(source)
    if not path.exists():
        raise ManifestError(f"{source}: no such file or directory")
    out: list[tuple[str, str]] = []
    for file in _iter_files(path):
        try:
            out.append((str(file), file.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ManifestError(f"{file}: cannot read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise ManifestError(f"{file}: not a text file (expected YAML or JSON)") from None
    if path.is_dir() and not out:
        raise ManifestError(f"{source}: directory holds no *.yaml, *.yml or *.json file")
    return out


def _expand(obj: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(obj, dict):
        raise ManifestError(
            f"{where}: expected a Kubernetes object (a mapping with apiVersion and kind), "
            f"got {type(obj).__name__}"
        )
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{where}: not a Kubernetes object: it has no 'kind'")
    if kind == "List" or (kind.endswith("List") and isinstance(obj.get("items"), list)):
        items = obj.get("items")
        if not isinstance(items, list):
            raise ManifestError(f"{where}: {kind} without an 'items' list")
        item_kind = kind[: -len("List")] if kind != "List" else None
        for i, item in enumerate(items):
            if item_kind and isinstance(item, dict) and "kind" not in item:
                # `kubectl get services -o yaml` items carry no kind of their own.
                item = {"kind": item_kind, "apiVersion": obj.get("apiVersion", "v1"), **item}
            yield from _expand(item, f"{where} item {i}")
        return
    yield obj


def parse(text: str, label: str) -> list[dict[str, Any]]:
    """Every object in one file's text (multi-document YAML or JSON), Lists expanded."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{label}: not valid YAML/JSON{at}: {problem}") from None
    objects: list[dict[str, Any]] = []
    for i, doc in enumerate(documents):
        if doc is None:  # empty document (a trailing '---')
            continue
        where = label if len(documents) == 1 else f"{label} document {i + 1}"
        objects.extend(_expand(doc, where))
    return objects


def load(sources: Sequence[str], *, stdin: IO[str] | None = None) -> Manifests:
    """Read every source and split the objects into Services, Nodes and skipped ones."""
    result = Manifests()
    for source in sources:
        for label, text in _read(source, stdin):
            for obj in parse(text, label):
                kind = obj.get("kind")
                name = (obj.get("metadata") or {}).get("name")
                if kind in ("Service", "Node"):
                    if not isinstance(name, str) or not name:
                        raise ManifestError(f"{label}: a {kind} without metadata.name")
                    (result.services if kind == "Service" else result.nodes).append(obj)
                else:
                    result.skipped.append(f"{kind}/{name or '?'}")
    return result


def with_defaults(services: Iterable[Mapping[str, Any]], namespace: str | None) -> list[dict[str, Any]]:
    """Copies of file Services with a namespace (``-n`` or ``default``) and a placeholder UID if absent."""
    out: list[dict[str, Any]] = []
    for svc in services:
        svc = dict(svc)
        meta = dict(svc.get("metadata") or {})
        if not meta.get("namespace"):
            meta["namespace"] = namespace or "default"
        if not meta.get("uid"):
            meta["uid"] = placeholder_uid(meta["namespace"], str(meta.get("name", "")))
            annotations = dict(meta.get("annotations") or {})
            annotations[PLACEHOLDER_ANNOTATION] = "true"
            meta["annotations"] = annotations
        svc["metadata"] = meta
        out.append(svc)
    return out


def has_placeholder_uid(service: Mapping[str, Any]) -> bool:
    return ((service.get("metadata") or {}).get("annotations") or {}).get(PLACEHOLDER_ANNOTATION) == "true"


def missing_node_ports(service: Mapping[str, Any]) -> str | None:
    """Why a file Service cannot be planned for lack of API-server-allocated ports, or ``None``."""
    spec = service.get("spec") or {}
    missing = [
        f"spec.ports[{i}].nodePort"
        for i, port in enumerate(spec.get("ports") or [])
        if isinstance(port, Mapping) and port.get("nodePort") is None
    ]
    if spec.get("externalTrafficPolicy") == "Local" and spec.get("healthCheckNodePort") is None:
        missing.append("spec.healthCheckNodePort")
    if not missing or spec.get("allocateLoadBalancerNodePorts") is False:
        return None
    return (
        f"{', '.join(missing)} not set: a Service read from a file has no NodePorts until the API "
        "server allocates them; set them in the manifest, or plan against the cluster "
        "(--kubeconfig/--context without -f)"
    )
