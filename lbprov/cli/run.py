"""``lbprov run``: the controller (in a cluster as a Deployment, or anywhere with a kubeconfig).

It serves one or more providers (``--provider aws --provider gcp``); Services pick one with
``spec.loadBalancerClass: lbprov.io/<provider>``, and Services without a class go to the default
provider (the first ``--provider`` unless ``--default-provider``/``--no-default-provider`` say
otherwise). SIGTERM or SIGINT stop it gracefully: no new work, in-flight reconciles finish, the
lease is released, exit code 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbprov.cli.errors import CLIError, describe
from lbprov.cli.options import add_provider_options, build_provider, provider_settings
from lbprov.provider import Provider, load_provider

if TYPE_CHECKING:  # imported when the controller starts: `lbprov --help` must not pay for them
    from lbprov.controller.manager import Controller, ControllerConfig
    from lbprov.kube.client import KubeClient

log = logging.getLogger("lbprov.run")

SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def in_cluster() -> bool:
    """Running in a pod (the API server's address is injected into every container)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def default_lease_namespace() -> str:
    """The pod's namespace in a cluster (POD_NAMESPACE or the service account's), else kube-system."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE_FILE.read_text().strip() or "kube-system"
    except OSError:
        return "kube-system"


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run the controller",
        description="Watch Services of type LoadBalancer and keep their cloud load balancers in step. "
        "Every provider setting is also read from the environment (LBPROV_<PROVIDER>_<FIELD>) "
        "or a --settings file; flags win.",
    )
    add_provider_options(parser, multiple=True)
    parser.add_argument(
        "--no-default-provider",
        action="store_true",
        help="handle only Services whose spec.loadBalancerClass is lbprov.io/<provider>",
    )
    k = parser.add_argument_group("Kubernetes")
    k.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster config, then $KUBECONFIG/~/.kube/config)"
    )
    k.add_argument("--context", help="kubeconfig context to use (default: the current context)")
    c = parser.add_argument_group("controller")
    c.add_argument(
        "--workers",
        type=int,
        default=10,
        help="Service reconciles making their own cloud calls at once (default: 10). On Azure, reconciles "
        "waiting on a shared load balancer's or NSG's batch give their slot up meanwhile, and the batch "
        "PUTs sent for them come on top (one per busy shared writer)",
    )
    c.add_argument(
        "--resync-period",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="re-plan every managed Service this often, repairing drift made in the cloud (default: 600)",
    )
    c.add_argument(
        "--node-debounce",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="collect node changes this long before re-planning every Service once (default: 1)",
    )
    c.add_argument(
        "--backoff-base",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="first retry delay of a failing Service (default: 5)",
    )
    c.add_argument(
        "--backoff-jitter",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="retry delays are drawn from [(1-FRACTION)*delay, delay] so Services that failed together "
        "do not retry in lockstep (default: 0.5; 0 = exact doubling)",
    )
    c.add_argument(
        "--backoff-max",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="cap of the doubling retry delay (default: 300)",
    )
    c.add_argument(
        "--shutdown-timeout",
        type=float,
        default=25.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, wait this long for in-flight reconciles (default: 25, under a pod's "
        "default 30 s grace period); every other part of the shutdown takes under 2 s",
    )
    le = parser.add_argument_group("leader election")
    le.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only the holder of a coordination.k8s.io Lease reconciles (default: on in a cluster, off elsewhere)",
    )
    le.add_argument(
        "--lease-namespace", help="namespace of the Lease (default: the pod's namespace, else kube-system)"
    )
    le.add_argument("--lease-name", default="lbprov", help="name of the Lease (default: lbprov)")
    le.add_argument(
        "--lease-identity", help="this replica's identity in the Lease (default: <hostname>_<pid>)"
    )
    le.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="how long a lease is valid without renewal (default: 15)",
    )
    le.add_argument(
        "--renew-deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a leader that cannot renew within this steps down (default: 10)",
    )
    le.add_argument(
        "--retry-period",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often candidates and the leader try the Lease (default: 2)",
    )
    o = parser.add_argument_group("observability")
    o.add_argument(
        "--metrics-address",
        default=":8080",
        type=metrics_address,
        help="[HOST]:PORT serving /metrics, /healthz and /readyz (default: :8080; 'off' disables it)",
    )
    o.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="log format on stderr: one JSON object per line, or text (default: json)",
    )
    o.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="log level (default: info)",
    )
    parser.set_defaults(func=run)


def metrics_address(value: str) -> str:
    """``--metrics-address``: ``off`` or ``[HOST]:PORT`` with a port in 0-65535 (checked up front)."""
    if value == "off":
        return value
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected [HOST]:PORT with a port in 0-65535 (e.g. :8080, 127.0.0.1:0) or 'off'"
        )
    return value


def check_can_listen(address: str) -> None:
    """Fail before anything starts when ``--metrics-address`` cannot be bound (in use, foreign host)."""
    if address == "off":
        return
    host, _, port = address.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server binds
        try:
            probe.bind((host.strip("[]") or "0.0.0.0", int(port)))
        except OSError as exc:
            raise CLIError(f"--metrics-address {address}: cannot listen: {exc.strerror}", "config") from exc


class RepeatedWarnings(logging.Filter):
    """Shows a provider's warning about the cluster once per resync period, not once per Service.

    A node a provider cannot use ("node n1: ... skipped") is reported while each Service is
    planned: 3 such nodes and 4 Services made 12 lines per round. A warning is a repeat when its
    logger, format and arguments match one shown less than ``window`` seconds ago. Records about
    one Service (with a ``service`` field, such as "sync failed") are never held back.
    """

    def __init__(self, window: float, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._shown: dict[tuple[str, str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or "service" in record.__dict__:
            return True
        key = (record.name, str(record.msg), repr(record.args))
        now = self.clock()
        last = self._shown.get(key)
        if last is not None and now - last < self.window:
            return False
        self._shown[key] = now
        return True


class ExplainErrors(logging.Filter):
    """Rewrites cloud and credential errors in log records into the one-line explanations of plan.

    The controller logs ``sync failed: %s`` with the exception itself as the argument; this filter
    (on the log handler of ``lbprov run``) replaces such an argument, and the ``error`` field, with
    :func:`lbprov.cli.errors.describe`'s message, so that ``run`` and ``plan`` say the same thing
    ("AWS: no credentials found: set AWS_PROFILE ...") instead of the SDK's raw text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("lbprov"):
            return True  # the SDKs' own records keep their format strings and arguments
        if isinstance(record.args, tuple) and any(isinstance(a, BaseException) for a in record.args):
            explained: list[object] = []
            for arg in record.args:
                found = describe(arg, command="run") if isinstance(arg, BaseException) else None
                explained.append(found.message if found is not None else arg)
                if found is not None and "error" in record.__dict__:
                    record.error = found.message
            record.args = tuple(explained)
        return True


def build_providers(
    args: argparse.Namespace, kube: KubeClient | None = None
) -> tuple[dict[str, Provider], str]:
    """Providers by name from flags/env/file (and the cluster's identity), and the cluster name."""
    names: list[str] = list(dict.fromkeys(args.provider or ["aws"]))
    providers: dict[str, Provider] = {}
    clusters: set[str] = set()
    for name in names:
        load_provider(name)
        clusters.add(provider_settings(args, name).cluster_name)
        providers[name] = build_provider(args, name, kube=kube)
    if len(clusters) > 1:
        raise CLIError(
            f"providers disagree on the cluster name: {', '.join(sorted(clusters))}: "
            "give one --cluster-name (or LBPROV_CLUSTER_NAME, or cluster_name: in --settings)",
            "config",
        )
    return providers, clusters.pop()


def make_config(args: argparse.Namespace, names: list[str], cluster: str) -> ControllerConfig:
    from lbprov.controller.manager import ControllerConfig, default_identity

    if args.no_default_provider or args.default_provider == "none":
        if args.default_provider not in (None, "none"):
            raise CLIError(f"--no-default-provider contradicts --default-provider {args.default_provider}")
        default = None
    else:
        default = args.default_provider or names[0]
        if default not in names:
            raise CLIError(f"--default-provider {default} is not among --provider {', '.join(names)}")
    leader_elect = in_cluster() if args.leader_elect is None else args.leader_elect
    return ControllerConfig(
        cluster=cluster,
        default_provider=default,
        workers=args.workers,
        resync_period=args.resync_period,
        node_debounce=args.node_debounce,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        backoff_jitter=args.backoff_jitter,
        leader_elect=leader_elect,
        lease_namespace=args.lease_namespace or default_lease_namespace(),
        lease_name=args.lease_name,
        identity=args.lease_identity or default_identity(),
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        shutdown_timeout=args.shutdown_timeout,
    )


class Stopped(BaseException):
    """SIGTERM/SIGINT arrived during start-up, before the controller could take over the stop.

    A BaseException, raised from the signal handler: it aborts whatever blocking call the main
    thread is in (reading the kubeconfig, a first API request), so that ``lbprov run`` stops
    within moments of a signal in every phase, as a pod's grace period expects.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run(args: argparse.Namespace) -> int:
    from lbprov.observability import setup_logging

    debug = getattr(args, "debug", False)
    level = logging.DEBUG if debug else getattr(logging, args.log_level.upper())
    setup_logging(level, json_logs=args.log_format == "json")
    shutdown = Shutdown()
    previous = {sig: signal.signal(sig, shutdown.handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    for log_handler in logging.getLogger().handlers:
        log_handler.addFilter(ExplainErrors())
        log_handler.addFilter(RepeatedWarnings(args.resync_period))
    try:
        code = _run(args, shutdown)
        if shutdown.requested:
            _exit_now(code)
        return code
    except Stopped as exc:
        log.info("received %s during start-up: stopped", exc)
        _exit_now(0)
        return 0
    except Exception as exc:
        if debug:
            raise
        explained = describe(exc, command="run")
        if explained is not None:  # settings, credentials, cluster access: one line, as plan says it
            print(f"lbprov run: error: {explained}", file=sys.stderr)
        else:
            log.error("controller failed: %s", exc, extra={"error": type(exc).__name__})
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _exit_now(code: int) -> None:
    """After a signal, with everything stopped: leave without the interpreter's teardown.

    Tearing down a process that loaded three cloud SDKs took 1-4 s on a loaded machine, and a
    daemon thread blocked on a dead API server can hold it further; the pod's grace period (and
    the 2 s the issue asks for) should not pay for it. Logs and stdio are flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class Shutdown:
    """The signal handler's state: before the controller runs, a signal raises :class:`Stopped`;
    once it runs (cache sync, leader election, reconciles), the controller is asked to stop and
    the main loop shuts it down gracefully."""

    def __init__(self) -> None:
        #: A plain flag, polled by the main loop: a signal handler must not take a lock (such as an
        #: Event's) that the interrupted main thread may be holding.
        self.requested = False
        self.controller: Controller | None = None
        self.signal_name = ""

    def handler(self, signum: int, _frame: Any) -> None:
        first = not self.requested
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        if self.controller is None:
            raise Stopped(signum)
        if first:
            log.info("received %s: shutting down", self.signal_name)
        self.controller.request_stop()


def _run(args: argparse.Namespace, shutdown: Shutdown) -> int:
    from lbprov import heap
    from lbprov.controller.manager import Controller, Interrupted
    from lbprov.kube.client import KubeClient
    from lbprov.observability import HTTPEndpoint, Metrics

    check_can_listen(args.metrics_address)
    for name in dict.fromkeys(args.provider or ["aws"]):
        provider_settings(args, name)  # settings errors before anything connects
    kube = KubeClient.auto(kubeconfig=args.kubeconfig, context=args.context)
    providers, cluster = build_providers(args, kube)
    config = make_config(args, list(providers), cluster)
    metrics = Metrics()
    controller = Controller(kube, providers, config, metrics=metrics)
    heap.SETTLE_INTERVAL = heap.SETTLE_SECONDS  # a long-lived process: lbprov/heap.py settle()
    endpoint: HTTPEndpoint | None = None
    if args.metrics_address and args.metrics_address != "off":
        try:
            endpoint = HTTPEndpoint(args.metrics_address, metrics, ready=controller.ready).start()
        except OSError as exc:  # in use, or a host that is not this machine's
            raise CLIError(
                f"--metrics-address {args.metrics_address}: cannot listen: {exc.strerror}"
            ) from exc
        log.info("serving /metrics /healthz /readyz on %s", endpoint.url)
    log.info(
        "starting controller",
        extra={"provider": ",".join(providers), "identity": config.identity, "reason": f"cluster {cluster}"},
    )
    shutdown.controller = controller
    try:
        if shutdown.requested:
            return 0
        try:
            controller.start()
        except Interrupted as exc:
            log.info("received %s: %s", shutdown.signal_name or "a stop request", exc)
            return 0
        while not shutdown.requested:
            time.sleep(0.1)
    finally:
        controller.stop()
        if endpoint is not None:
            endpoint.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m lbprov run` is the entry point
    from lbprov.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
