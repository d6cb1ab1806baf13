"""``lbprov demo``: the whole loop on a laptop, no cloud account, no cluster.

It starts, in this process, the sandbox Kubernetes API server and the provider's cloud emulator
(``load_provider(name).sandbox(...)``, found through the plugin registry only), creates three Nodes
matching the emulator's instances (providerID, InternalIP, zone label), applies
``examples/services.yaml``, and runs the real controller over HTTP against both. Progress goes to
stderr; the result table and the cleanup go to stdout. With ``serve=True`` it keeps running and
prints the ``kubectl`` line to use against the sandbox.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from lbprov.controller.manager import Controller, ControllerConfig
from lbprov.controller.service import FINALIZER, ingress_of
from lbprov.intent import ZONE_LABEL
from lbprov.model import Action, Plan, SandboxNode
from lbprov.observability import HTTPEndpoint, Metrics
from lbprov.provider import Provider, load_provider

DEMO_NODES = ("node-1", "node-2", "node-3")
DEMO_NAMESPACE = "demo"
#: One cluster name for every provider's demo (the README's commands use it too).
DEMO_CLUSTER = "sandbox"
#: The Service deleted at the end to show the cleanup.
DELETE_SERVICE = "dns"


def examples_file() -> Path:
    """``examples/services.yaml`` of the source tree (the demo runs from a checkout)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "examples" / "services.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("examples/services.yaml not found next to the lbprov package")


def load_services(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if d.get("kind") == "Service"]


def node_object(node: SandboxNode) -> dict[str, Any]:
    """A Node as the kubelet + cloud node controller would register it for this instance."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                ZONE_LABEL: node.zone,
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {"providerID": node.provider_id},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip},
                *([{"type": "InternalIP", "address": node.internal_ipv6}] if node.internal_ipv6 else []),
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


@dataclass
class DemoResult:
    """What the demo did (returned for tests; printed for people)."""

    provider: str
    #: From the start of run_demo (sandbox API, emulator and controller start-up included).
    seconds_to_ingress: float = 0.0
    #: From the controller's start, as the per-Service "ready after" lines count.
    seconds_after_controller_start: float = 0.0
    seconds_total: float = 0.0
    ingress: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    resources: dict[str, dict[str, int]] = field(default_factory=dict)
    deleted: str | None = None
    deleted_seconds: float = 0.0
    leaked_after_delete: int = 0
    reads: int = 0
    writes: int = 0
    metrics_text: str = ""
    #: With serve=True: the folder of the kubeconfig and settings file (removed on stop).
    handover_dir: str | None = None


class _Progress:
    """One line per Service when its load balancer is ready, and a spinner line on a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.done: set[str] = set()
        self._spin = 0

    def update(self, ready: dict[str, list[dict[str, str]]]) -> None:
        for name in sorted(ready):
            if name not in self.done:
                self.done.add(name)
                addr = ", ".join(i.get("hostname") or i.get("ip", "") for i in ready[name])
                self._clear()
                self.stream.write(
                    f"  [{len(self.done)}/{self.total}] {name:<14} ready after "
                    f"{time.monotonic() - self.start:4.1f}s  {addr}\n"
                )
        if self.tty and len(self.done) < self.total:
            self._spin += 1
            spinner = "|/-\\"[self._spin % 4]
            self.stream.write(
                f"\r  {spinner} waiting for {self.total - len(self.done)} load balancer(s) "
                f"({time.monotonic() - self.start:4.1f}s)"
            )
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty:
            self.stream.write("\r\033[K")


def _wait(pred: Callable[[], bool], timeout: float, tick: Callable[[], None] = lambda: None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        tick()
        time.sleep(0.1)
    return pred()


def _ports(svc: dict[str, Any]) -> str:
    parts = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        parts.append(f"{p.get('port')}/{p.get('protocol', 'TCP')}->{p.get('nodePort')}")
    return " ".join(parts)


def _owned_by_service(provider: Provider) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for lb in provider.list_owned():
        counts: Counter[str] = (
            Counter(kind for kind, _ in lb.resources) if lb.resources else Counter({lb.kind: 1})
        )
        merged = Counter(out.get(lb.ref.key, {}))
        merged.update(counts)
        out[lb.ref.key] = dict(merged)
    return out


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_demo(
    provider_name: str = "aws",
    *,
    serve: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    services_file: Path | None = None,
    timeout: float = 120.0,
    stop_event: threading.Event | None = None,
) -> DemoResult:
    """Run the demo; raises on failure (the CLI turns that into exit code 1)."""
    from lbprov.kube.client import KubeClient
    from lbprov.kube.facts import fill_settings
    from lbprov.sandbox.kube_api import KubeAPIServer

    out = out or sys.stdout
    err = err or sys.stderr
    started = time.monotonic()
    result = DemoResult(provider_name)
    services = load_services(services_file or examples_file())
    cls = load_provider(provider_name)

    err.write(f"lbprov demo: provider {provider_name}, {len(services)} Services, {len(DEMO_NODES)} nodes\n")
    err.write("  starting the sandbox Kubernetes API and the cloud emulator...\n")
    err.flush()
    try:
        with KubeAPIServer() as api, cls.sandbox(list(DEMO_NODES)) as cloud:
            # An emulator may be seeded for its own cluster name (subnets, security groups are tagged
            # with it); otherwise the demo's one name goes into the settings, the same for every provider.
            cluster = str(cloud.settings.get("cluster_name") or DEMO_CLUSTER)
            settings = {**cloud.settings, "cluster_name": cluster}
            kube = KubeClient.for_url(api.url)
            provider = cls.from_settings(fill_settings(kube, cls, settings, read_only=False))
            kube.create_namespace(DEMO_NAMESPACE)
            for node in cloud.nodes:
                kube.create_node(node_object(node))
            for svc in services:
                body = copy.deepcopy(svc)
                body.setdefault("metadata", {})["namespace"] = DEMO_NAMESPACE
                kube.create_service(DEMO_NAMESPACE, body)
            err.write(
                f"  kube API {api.url}, {cloud.provider} emulator {cloud.endpoint}; "
                f"applied {len(services)} Services to namespace {DEMO_NAMESPACE}\n"
            )
            metrics = Metrics()
            config = ControllerConfig(
                cluster=cluster,
                default_provider=provider_name,
                workers=5,
                node_debounce=0.5,
                backoff_base=0.5,
                backoff_max=5.0,
            )
            controller = Controller(kube, {provider_name: provider}, config, metrics=metrics)
            # (kind, name, description) per Service: concurrent plans may each list a shared resource
            # (an instance group, the shared Azure LB) that only one apply really creates, so a create
            # that several Services list identically is counted once, as shared. Same-named resources
            # that differ (each NLB's own "TCP:80" listener) stay each Service's own.
            created: dict[str, set[tuple[str, str, str]]] = {}
            deleted: dict[str, Counter[str]] = {}

            def on_applied(key: str, plan: Plan) -> None:
                for change in plan.changes:
                    if change.action is Action.DELETE:
                        deleted.setdefault(key, Counter())[change.kind] += 1
                    elif change.action is Action.CREATE:
                        described = json.dumps(change.after, sort_keys=True, default=str)
                        created.setdefault(key, set()).add((change.kind, change.name, described))

            controller.reconciler.applied_listeners.append(on_applied)
            endpoint = HTTPEndpoint("127.0.0.1:0", metrics, ready=controller.ready).start()
            controller.start()
            controller_started = time.monotonic()
            try:
                names = [s["metadata"]["name"] for s in services]
                progress = _Progress(err, len(names))

                def ready() -> dict[str, list[dict[str, str]]]:
                    found: dict[str, list[dict[str, str]]] = {}
                    for svc in kube.list_services(DEMO_NAMESPACE)[0]:
                        if ingress_of(svc):
                            found[svc["metadata"]["name"]] = ingress_of(svc)
                    return found

                state: dict[str, Any] = {}

                def all_ready() -> bool:
                    state["ready"] = ready()
                    progress.update(state["ready"])
                    return len(state["ready"]) == len(names)

                if not _wait(all_ready, timeout):
                    missing = sorted(set(names) - set(state.get("ready", {})))
                    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for ingress of {missing}")
                progress._clear()
                result.seconds_to_ingress = time.monotonic() - started
                result.seconds_after_controller_start = time.monotonic() - controller_started
                result.ingress = state["ready"]
                owners = Counter(res for names_ in created.values() for res in names_)
                shared = sorted({res for res, n in owners.items() if n > 1})
                result.resources = {
                    k: dict(Counter(kind for kind, name, after in v if owners[(kind, name, after)] == 1))
                    for k, v in created.items()
                }
                svc_objs = {s["metadata"]["name"]: s for s in kube.list_services(DEMO_NAMESPACE)[0]}
                rows = [["SERVICE", "PORTS (port/proto->nodePort)", "INGRESS", "CLOUD RESOURCES CREATED"]]
                for name in names:
                    key = f"{DEMO_NAMESPACE}/{name}"
                    res = result.resources.get(key, {})
                    rows.append(
                        [
                            key,
                            _ports(svc_objs[name]),
                            ", ".join(i.get("hostname") or i.get("ip", "") for i in result.ingress[name]),
                            ", ".join(f"{n} {k}" for k, n in sorted(res.items())),
                        ]
                    )
                out.write(
                    f"\nAll {len(names)} load balancers ready {result.seconds_after_controller_start:.1f}s after "
                    f"the controller started ({result.seconds_to_ingress:.1f}s since lbprov demo started, "
                    f"including start-up of the sandbox API and the {provider_name} emulator; the per-Service "
                    "times above count from the controller's start):\n\n"
                )
                out.write(_table(rows) + "\n")
                if shared:
                    kinds = Counter(kind for kind, _, _ in shared)
                    out.write(
                        "Shared by the Services above: "
                        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                        + "\n"
                    )
                out.write("\n")
                out.flush()

                # Cleanup of one Service: finalizer -> cloud delete -> finalizer removed -> object gone.
                t0 = time.monotonic()
                victim = f"{DEMO_NAMESPACE}/{DELETE_SERVICE}"
                out.write(f"Deleting Service {victim} (it carries the finalizer {FINALIZER})...\n")
                out.flush()
                kube.delete_service(DEMO_NAMESPACE, DELETE_SERVICE)
                if not _wait(lambda: kube.get_service(DEMO_NAMESPACE, DELETE_SERVICE) is None, 30):
                    raise RuntimeError(f"{victim} was not cleaned up within 30s")
                result.deleted = victim
                result.deleted_seconds = time.monotonic() - t0
                result.leaked_after_delete = sum(_owned_by_service(provider).get(victim, {}).values())
                gone = ", ".join(f"{n} {k}" for k, n in sorted(deleted.get(victim, Counter()).items()))
                out.write(
                    f"  {victim}: deleted {gone or 'nothing'}; finalizer removed, object gone "
                    f"in {result.deleted_seconds:.1f}s; {result.leaked_after_delete} owned resources left\n"
                )
                stats = provider.calls.stats
                result.reads, result.writes = stats.reads, stats.writes
                result.metrics_text = metrics.render().decode()
                result.seconds_total = time.monotonic() - started
                out.write(
                    f"\nCloud API calls: {stats.reads} reads, {stats.writes} writes. "
                    f"Demo finished in {result.seconds_total:.1f}s.\n"
                )
                out.flush()
                if serve:
                    result.handover_dir = tempfile.mkdtemp(prefix="lbprov-demo-")
                    handover = write_handover(
                        result.handover_dir, api, provider_name, cluster, settings, cloud.endpoint
                    )
                    _print_handover(out, handover, api, provider_name, endpoint.url)
                    _wait_for_stop(stop_event)
                    out.write(
                        f"\nStopping: the controller, the sandbox Kubernetes API and the {provider_name} "
                        "emulator. Their state lived in this process only, so no load balancer is left "
                        f"anywhere; removing {result.handover_dir} (kubeconfig, settings file).\n"
                    )
                    out.flush()
            finally:
                controller.stop()
                endpoint.stop()
    finally:
        if result.handover_dir:
            shutil.rmtree(result.handover_dir, ignore_errors=True)
            out.write("Stopped.\n")
            out.flush()
    return result


@dataclass
class Handover:
    """What ``--serve`` hands a user: files written for them and command lines that work as printed."""

    directory: str
    kubeconfig: str
    settings_file: str
    plan: list[str]
    gc: list[str]
    #: (label, value) lines describing the emulator: endpoint, region/project/subscription, credentials.
    cloud: list[tuple[str, str]]
    #: A cloud CLI command against the emulator (environment assignments first), or None.
    cloud_cli: str | None = None


def _lbprov_command() -> list[str]:
    """How to run this lbprov from any shell: the script next to this Python, else ``-m``."""
    script = Path(sys.executable).parent / "lbprov"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "lbprov"]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _cloud_details(
    provider: str, settings: dict[str, Any], endpoint: str, folder: Path
) -> tuple[list[tuple[str, str]], str | None]:
    """The emulator as a user needs it, read from the sandbox's settings (what ``from_settings``
    gets), with a cloud CLI line where the image has that CLI."""
    if provider == "aws":
        region = str(settings.get("region", ""))
        key, secret = settings.get("access_key_id", ""), settings.get("secret_access_key", "")
        lines = [
            ("endpoint", str(settings.get("endpoint_url") or endpoint)),
            ("region", region),
            ("credentials", f"AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret}"),
        ]
        cli = (
            f"AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret} aws --endpoint-url "
            f"{settings.get('endpoint_url') or endpoint} --region {region} elbv2 describe-load-balancers"
        )
        return lines, cli
    if provider == "gcp":
        api = str(settings.get("api_endpoint") or endpoint)
        token_file = folder / "gcp-access-token"
        _write_private(token_file, "sandbox-token\n")
        lines = [
            ("endpoint", api),
            ("project", str(settings.get("project", ""))),
            ("region", str(settings.get("region", ""))),
            ("credentials", f"none needed (the emulator takes any token; gcloud gets {token_file})"),
        ]
        cli = (
            f"CLOUDSDK_CONFIG={folder / 'gcloud'} CLOUDSDK_CORE_DISABLE_PROMPTS=1 "
            f"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE={api}/compute/v1/ gcloud compute forwarding-rules list "
            f"--project {settings.get('project', '')} --regions {settings.get('region', '')} "
            f"--access-token-file={token_file}"
        )
        return lines, cli
    if provider == "azure":
        base = str(settings.get("base_url") or endpoint)
        token = str(settings.get("static_token", ""))
        lines = [
            ("endpoint", base),
            ("subscription", str(settings.get("subscription_id", ""))),
            ("resource group", str(settings.get("resource_group", ""))),
            ("location", str(settings.get("location", ""))),
            ("CA bundle", str(settings.get("ca_bundle", ""))),
            ("credentials", f"bearer token {token}"),
        ]
        cli = (
            f"curl -s --cacert {settings.get('ca_bundle', '')} -H 'Authorization: Bearer {token}' "
            f"'{base}/subscriptions/{settings.get('subscription_id', '')}/resourceGroups/"
            f"{settings.get('resource_group', '')}/providers/Microsoft.Network/loadBalancers?api-version=2024-05-01'"
        )
        return lines, cli
    # A provider the demo does not know: show every plain setting.
    return [("endpoint", endpoint)] + [
        (k, str(v)) for k, v in sorted(settings.items()) if isinstance(v, str | int) and v != ""
    ], None


def write_handover(
    folder: str, api: Any, provider: str, cluster: str, settings: dict[str, Any], endpoint: str
) -> Handover:
    """Write the kubeconfig (context namespace: the demo's) and the settings file for ``lbprov
    plan``/``gc`` into ``folder``, and build the command lines that use them."""
    base = Path(folder)
    kubeconfig = api.write_kubeconfig(base / "kubeconfig", namespace=DEMO_NAMESPACE)
    provider_settings = {
        k: v for k, v in settings.items() if k not in ("cluster_name", "cluster_id") and v is not None
    }
    settings_file = base / f"sandbox-{provider}.yaml"
    _write_private(
        settings_file, yaml.safe_dump({"cluster_name": cluster, provider: provider_settings}, sort_keys=False)
    )
    common = ["--provider", provider, "--settings", str(settings_file), "--kubeconfig", kubeconfig]
    lbprov = _lbprov_command()
    cloud, cli = _cloud_details(provider, settings, endpoint, base)
    return Handover(
        directory=folder,
        kubeconfig=kubeconfig,
        settings_file=str(settings_file),
        plan=[*lbprov, "plan", *common],
        gc=[*lbprov, "gc", *common],
        cloud=cloud,
        cloud_cli=cli,
    )


def _print_handover(out: TextIO, h: Handover, api: Any, provider: str, metrics_url: str) -> None:
    width = max(len(label) for label, _ in h.cloud)
    cloud = "\n".join(f"    {label:<{width}}  {value}" for label, value in h.cloud)
    out.write(
        "\nThe sandbox keeps running (Ctrl-C to stop).\n\n"
        f"Kubernetes API {api.url} (kubeconfig {h.kubeconfig}, namespace {DEMO_NAMESPACE}):\n"
        f"  kubectl --kubeconfig {h.kubeconfig} get services\n"
        f"  kubectl --kubeconfig {h.kubeconfig} get events\n\n"
        f"{provider} emulator:\n{cloud}\n"
        + (f"  {h.cloud_cli}\n" if h.cloud_cli else "")
        + f"\nlbprov against this sandbox (settings written to {h.settings_file}):\n"
        f"  {shlex.join(h.plan)}\n"
        f"  {shlex.join(h.gc)}\n\n"
        f"Controller metrics: curl {metrics_url}/metrics\n"
    )
    out.flush()


def _wait_for_stop(stop_event: threading.Event | None) -> None:
    stop = stop_event or threading.Event()
    if stop_event is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass


__all__ = ["DemoResult", "Handover", "examples_file", "node_object", "run_demo", "write_handover"]
