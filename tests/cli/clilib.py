"""Helpers for the CLI tests: Kubernetes objects, a CLI runner, and an in-memory provider.

The in-memory ``FakeProvider`` exists to test the CLI's OWN logic (which Services, exit codes, JSON
schema, gc classification, output) quickly and independently of any cloud. It is a small stateful
fake, not a stub: plans are computed by diffing a world dict, ``apply`` mutates it, and every write
it receives is logged on the "cloud side" (``WRITES``), like the emulators' ``mutating_requests()``.
The same behaviours are checked against the real providers on their emulators in
``test_sandbox_*.py``.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from lbprov import naming
from lbprov.cli import main
from lbprov.cloudcalls import CloudCalls, RateLimits
from lbprov.model import (
    Action,
    Change,
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    OwnershipConflict,
    Plan,
    ServiceRef,
)
from lbprov.provider import ENTRY_POINT_GROUP, SandboxCloud
from lbprov.settings import ProviderSettings

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "lbprov" / "schemas" / "plan-v1.json"
KIND_ANNOTATION = "fake.lbprov.io/kind"
log = logging.getLogger("lbprov.fake")


# -- Kubernetes objects ----------------------------------------------------------------------------------


def make_service(
    name: str,
    *,
    ns: str = "default",
    uid: str | None = None,
    ports: Sequence[tuple[int, int | None]] = ((80, 30080),),
    protocol: str = "TCP",
    lb_class: str | None = None,
    annotations: dict[str, str] | None = None,
    type_: str = "LoadBalancer",
    finalizers: Sequence[str] = (),
    with_uid: bool = True,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "ports": []}
    for port, node_port in ports:
        entry: dict[str, Any] = {"name": f"p{port}", "protocol": protocol, "port": port}
        if node_port is not None:
            entry["nodePort"] = node_port
        spec["ports"].append(entry)
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    meta: dict[str, Any] = {"name": name, "namespace": ns, "annotations": dict(annotations or {})}
    if with_uid:
        meta["uid"] = uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-service:{ns}/{name}"))
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def make_node(name: str, provider_id: str, ip: str = "10.0.0.1", zone: str = "zone-a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
        "spec": {"providerID": provider_id},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}]},
    }


# -- running the CLI -------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.out)
        return doc


def run_cli(argv: Sequence[str], *, stdin: str | None = None, monkeypatch: Any = None) -> Result:
    """Run ``lbprov <argv>`` in-process and capture stdout/stderr and the exit code."""
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None, "pass monkeypatch to feed stdin"
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return Result(code, out.getvalue(), err.getvalue())


def validate_schema(doc: Mapping[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)


# -- the in-memory provider ------------------------------------------------------------------------------

#: world name -> {resource name: record}; shared by every FakeProvider built with that world.
WORLDS: dict[str, dict[str, dict[str, Any]]] = {}
#: world name -> writes received "by the cloud" (the read-only proof reads this).
WRITES: dict[str, list[str]] = {}


class FakeSettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="LBPROV_FAKE_", extra="forbid", frozen=True)

    world: str = Field("default", description="Name of the in-memory world to use.")


class FakeProvider:
    name: ClassVar[str] = "fake"
    settings_model: ClassVar[type[FakeSettings]] = FakeSettings

    def __init__(self, settings: FakeSettings, read_only: bool) -> None:
        self.settings = settings
        self.cluster = settings.cluster_name
        self.world = WORLDS.setdefault(settings.world, {})
        self.writes = WRITES.setdefault(settings.world, [])
        self.calls = CloudCalls(
            "fake",
            is_write=lambda op: op.split(".")[-1].startswith(("create", "update", "delete")),
            read_only=read_only,
            limits=RateLimits(None, 1, None, 1),
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, read_only: bool = False) -> FakeProvider:
        return cls(FakeSettings(**settings), read_only)

    def resolve(self, intent: Intent, annotations: Mapping[str, str]) -> Intent:
        kind = annotations.get(KIND_ANNOTATION, "nlb")
        if kind not in ("nlb", "classic"):
            raise InvalidService(
                f"metadata.annotations[{KIND_ANNOTATION}]", f"{kind!r}; accepted values: nlb, classic"
            )
        return replace(intent, options=kind)

    # cloud side
    def _read(self) -> None:
        self.calls.before_send("lb.describe")

    def _write(self, op: str) -> None:
        self.calls.before_send(op)
        self.writes.append(op)

    @staticmethod
    def lb_resource(lb_name: str, kind: str) -> str:
        return f"{lb_name}-{kind}"

    def _owned(self, rec: Mapping[str, Any]) -> bool:
        return naming.is_owned_by_cluster(dict(rec["tags"]), self.cluster)

    def plan(self, intent: Intent) -> Plan:
        self._read()
        for target in intent.targets:  # as the GCP provider warns about nodes it cannot use
            if not target.provider_id.startswith("fake://"):
                log.warning(
                    "node %s: providerID %r is not fake://<name>; skipped",
                    target.node_name,
                    target.provider_id,
                )
        kind = intent.options or "nlb"
        name = self.lb_resource(intent.lb_name, kind)
        changes: list[Change] = []
        for other, rec in sorted(self.world.items()):
            if (
                other != name
                and self._owned(rec)
                and rec["tags"].get(naming.SERVICE_UID_TAG) == intent.ref.uid
            ):
                for port in rec["ports"]:
                    changes.append(
                        Change(Action.DELETE, "listener", f"{other}:{port}", before={"port": port})
                    )
                changes.append(Change(Action.DELETE, "load-balancer", other, before={"kind": rec["kind"]}))
        rec = self.world.get(name)
        want_ports = sorted(p.port for p in intent.ports)
        ingress: tuple[Ingress, ...] = ()
        if rec is None:
            changes.append(Change(Action.CREATE, "load-balancer", name, after={"kind": kind}))
            changes += [
                Change(Action.CREATE, "listener", f"{name}:{p}", after={"port": p}) for p in want_ports
            ]
        else:
            if not self._owned(rec):
                raise OwnershipConflict(f"{name} exists but is not owned by cluster {self.cluster}")
            ingress = (Ingress(hostname=f"{name}.fake"),)
            for p in sorted(set(rec["ports"]) - set(want_ports)):
                changes.append(Change(Action.DELETE, "listener", f"{name}:{p}", before={"port": p}))
            for p in sorted(set(want_ports) - set(rec["ports"])):
                changes.append(Change(Action.CREATE, "listener", f"{name}:{p}", after={"port": p}))
        return Plan("fake", intent.ref, tuple(changes), intent=intent, ingress=ingress)

    def plan_delete(self, ref: ServiceRef) -> Plan:
        self._read()
        changes: list[Change] = []
        for name, rec in sorted(self.world.items()):
            if self._owned(rec) and rec["tags"].get(naming.SERVICE_UID_TAG) == ref.uid:
                for port in rec["ports"]:
                    changes.append(Change(Action.DELETE, "listener", f"{name}:{port}", before={"port": port}))
                changes.append(Change(Action.DELETE, "load-balancer", name, before={"kind": rec["kind"]}))
        return Plan("fake", ref, tuple(changes))

    def apply(self, plan: Plan) -> tuple[Ingress, ...]:
        for c in plan.changes:
            if c.kind == "load-balancer":
                if c.action is Action.CREATE:
                    self._write("lb.createLoadBalancer")
                    assert plan.intent is not None
                    tags = naming.ownership_tags(self.cluster, plan.ref, self.settings.cluster_id)
                    tags[naming.LB_KIND_TAG] = str((c.after or {})["kind"])
                    self.world[c.name] = {"kind": (c.after or {})["kind"], "tags": tags, "ports": []}
                elif c.action is Action.DELETE:
                    self._write("lb.deleteLoadBalancer")
                    rec = self.world[c.name]
                    assert self._owned(rec), "fake: refusing to delete a foreign resource"
                    del self.world[c.name]
            else:
                lb, port = c.name.rsplit(":", 1)
                if c.action is Action.CREATE:
                    self._write("lb.createListener")
                    self.world[lb]["ports"].append(int(port))
                else:
                    self._write("lb.deleteListener")
                    if lb in self.world:
                        self.world[lb]["ports"].remove(int(port))
        if plan.intent is None:
            return ()
        return (Ingress(hostname=f"{self.lb_resource(plan.intent.lb_name, plan.intent.options)}.fake"),)

    def list_owned(self) -> list[OwnedLoadBalancer]:
        self._read()
        out = []
        for name, rec in sorted(self.world.items()):
            if not self._owned(rec):
                continue
            tags = rec["tags"]
            ns, _, svc = tags[naming.SERVICE_NAME_TAG].partition("/")
            ref = ServiceRef(ns, svc, tags[naming.SERVICE_UID_TAG])
            parts = (("load-balancer", name), *(("listener", f"{name}:{p}") for p in rec["ports"]))
            out.append(
                OwnedLoadBalancer(
                    "fake", ref, name, rec["kind"], tuple(parts), cluster_id=tags.get(naming.CLUSTER_ID_TAG)
                )
            )
        return out

    @classmethod
    def sandbox(cls, nodes: Sequence[str]) -> AbstractContextManager[SandboxCloud]:
        raise NotImplementedError("the fake has no emulator: it is in-memory")


FAKE_ENTRY_POINT = EntryPoint(name="fake", value="cli_testlib:FakeProvider", group=ENTRY_POINT_GROUP)


def registered_fake(monkeypatch: Any) -> Iterator[Any]:
    """Register the in-memory provider ``fake`` in the entry-point registry, with fresh worlds;
    yields this module. The body of the ``fake`` fixtures of tests/cli and tests/safety."""
    import sys

    import lbprov.provider as registry

    real = registry.entry_points

    def entry_points(*, group: str) -> list[Any]:
        found = list(real(group=group))
        if group == registry.ENTRY_POINT_GROUP:
            found.append(FAKE_ENTRY_POINT)
        return found

    monkeypatch.setattr(registry, "entry_points", entry_points)
    WORLDS.clear()
    WRITES.clear()
    yield sys.modules[__name__]
    WORLDS.clear()
    WRITES.clear()
