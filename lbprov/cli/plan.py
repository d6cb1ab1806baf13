"""``lbprov plan``: what lbprov would create, change or delete -- against a real cloud account.

Reads Services and Nodes from the cluster (read-only: list calls only) or from manifest files,
builds each Service's intent and asks the provider for its plan. The provider is built with
``read_only=True``, so its CloudCalls refuses every mutating request before it is sent: a plan
cannot write, by construction.

Exit codes follow ``terraform plan -detailed-exitcode``: 0 nothing would change, 2 something would,
1 error -- including a Service that could not be planned (invalid, or a cloud error); the Services
that could be planned are still printed. Usage errors (bad flags) exit 1 too (:class:`lbprov.cli.Parser`).

Which Services: ``type: LoadBalancer`` whose ``spec.loadBalancerClass`` is ``lbprov.io/<provider>``,
or unset (served by the default provider, ``--provider`` unless ``--default-provider`` says
otherwise). Services that no longer want a load balancer (another type, or being deleted) but still
carry the finalizer ``service.kubernetes.io/load-balancer-cleanup`` get a delete plan, as the
controller would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import yaml

from lbprov import manifests
from lbprov.cli.errors import CLIError, UserError, describe
from lbprov.cli.options import (
    add_default_provider_option,
    add_provider_options,
    build_provider,
    default_provider,
    provider_settings,
)
from lbprov.intent import IntentSettings, build_intent, service_ref
from lbprov.model import InvalidService, Plan, ServiceRef
from lbprov.progress import Progress
from lbprov.provider import Provider, implemented_elsewhere, load_provider
from lbprov.provider import read_round as provider_read_round
from lbprov.render import plan_to_json, render_plan

FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
CLASS_PREFIX = "lbprov.io/"
RUN_SCHEMA = "lbprov.plan-run/v1"

Obj = dict[str, Any]
Operation = Literal["ensure", "delete"]

#: Loggers whose warnings repeat what the one-line error says (unless --debug).
QUIET_LOGGERS = ("azure.identity", "google.auth", "botocore.credentials")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


# -- argument parsing --------------------------------------------------------------------------------


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (read-only: list Services and Nodes)")
    group.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)",
    )
    group.add_argument("--context", help="kubeconfig context (default: the current context)")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="output format: text, or the same document as json or yaml (default: text)",
    )
    parser.add_argument(
        "--no-color", action="store_true", help="no colours (also: NO_COLOR env); colours only on a terminal"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress indicator on stderr")
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show stack traces of errors"
    )


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="show what lbprov would do (read-only; exit 0 no changes, 2 changes, 1 error)",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 nothing would change, 2 something would change, 1 error "
        "(including a Service that could not be planned).",
    )
    add_provider_options(parser)
    add_default_provider_option(parser)
    add_cluster_options(parser)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="only this namespace (default: all namespaces)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces (the default)")
    src = parser.add_argument_group("manifests instead of the cluster")
    src.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE|DIR|-",
        help="read Services (and Nodes) from YAML/JSON manifests; repeatable; '-' is stdin",
    )
    src.add_argument(
        "--nodes",
        action="append",
        metavar="FILE|DIR|-",
        help="read Nodes from manifests (default: Nodes in the -f files, else the cluster)",
    )
    add_common_options(parser)
    parser.set_defaults(func=run)


# -- which Services ------------------------------------------------------------------------------------


def provider_for(svc: Mapping[str, Any], provider: str, default_provider: str | None) -> str | None:
    """The provider that serves ``svc`` (class ``lbprov.io/<name>``, else the default)."""
    cls = (svc.get("spec") or {}).get("loadBalancerClass")
    if cls:
        if isinstance(cls, str) and cls.startswith(CLASS_PREFIX):
            return cls[len(CLASS_PREFIX) :]
        return None
    return default_provider


def wants_load_balancer(svc: Mapping[str, Any]) -> bool:
    meta = svc.get("metadata") or {}
    return (svc.get("spec") or {}).get("type") == "LoadBalancer" and not meta.get("deletionTimestamp")


def has_finalizer(svc: Mapping[str, Any]) -> bool:
    return FINALIZER in ((svc.get("metadata") or {}).get("finalizers") or [])


def select(
    services: Iterable[Obj],
    provider: str,
    default_provider: str | None,
    provider_cls: object | None = None,
) -> list[tuple[Obj, Operation]]:
    """The Services ``provider`` serves and what the controller would do with each, sorted by key.

    With ``provider_cls``, Services another controller of the cloud implements are skipped, as the
    controller skips them."""
    chosen: list[tuple[Obj, Operation]] = []
    for svc in services:
        if provider_for(svc, provider, default_provider) != provider:
            continue
        if wants_load_balancer(svc) and not implemented_elsewhere(provider_cls, svc):
            chosen.append((svc, "ensure"))
        elif has_finalizer(svc):
            chosen.append((svc, "delete"))
    chosen.sort(key=lambda pair: service_ref(pair[0]).key)
    return chosen


# -- inputs ---------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    services: list[Obj]
    nodes: list[Obj]
    source: Literal["cluster", "files"]
    notes: list[str] = field(default_factory=list)
    #: The cluster client, when the cluster was read (the provider gets its identity from it).
    kube: Any = None


def listed(result: Any) -> list[Obj]:
    """Items of a KubeClient list call, which returns ``(items, resourceVersion)``."""
    items = result[0] if isinstance(result, tuple) else result
    return list(items)


def cluster_client(args: argparse.Namespace) -> Any:
    """The read-only Kubernetes client (imported lazily: files-only runs need no cluster)."""
    from lbprov.kube.client import KubeClient

    kubeconfig = getattr(args, "kubeconfig", None)
    if kubeconfig and not os.path.isfile(kubeconfig):
        raise CLIError(f"--kubeconfig {kubeconfig}: no such file", "kubernetes")
    return KubeClient.auto(kubeconfig, getattr(args, "context", None))


def read_inputs(args: argparse.Namespace, *, stdin: IO[str] | None = None) -> Inputs:
    if sum(1 for s in [*(args.filename or []), *(args.nodes or [])] if s == "-") > 1:
        raise CLIError("'-' (stdin) can be given only once across -f and --nodes")
    client: Any = None

    def kube() -> Any:
        nonlocal client
        if client is None:
            client = cluster_client(args)
        return client

    notes: list[str] = []
    if args.filename:
        found = manifests.load(args.filename, stdin=stdin)
        if found.skipped:
            notes.append(
                f"skipped {len(found.skipped)} object(s) that are not Services or Nodes: "
                + ", ".join(found.skipped[:5])
                + (" ..." if len(found.skipped) > 5 else "")
            )
        if not found.services:
            what = f" (found {', '.join(found.skipped[:5])})" if found.skipped else ""
            raise CLIError(f"{', '.join(args.filename)}: no Service in the manifests{what}")
        services = manifests.with_defaults(found.services, args.namespace)
        if args.namespace:
            services = [s for s in services if s["metadata"]["namespace"] == args.namespace]
        source: Literal["cluster", "files"] = "files"
        nodes = found.nodes
    else:
        services = listed(kube().list_services(args.namespace))
        source = "cluster"
        nodes = []
    if args.nodes:
        node_manifests = manifests.load(args.nodes, stdin=stdin)
        if not node_manifests.nodes:
            raise CLIError(f"{', '.join(args.nodes)}: no Node in the manifests")
        nodes = node_manifests.nodes
    elif source == "cluster" or not nodes:
        try:
            nodes = listed(kube().list_nodes())
        except Exception as exc:
            if source == "cluster":
                raise
            explained = describe(exc)
            reason = explained.message if explained else f"{type(exc).__name__}: {exc}"
            raise CLIError(
                f"no Nodes: the manifests hold none and the cluster could not be read ({reason}); "
                "give them with --nodes FILE",
                "kubernetes",
            ) from exc
    return Inputs(services=services, nodes=nodes, source=source, notes=notes, kube=client)


# -- planning -------------------------------------------------------------------------------------------


@dataclass
class ServiceResult:
    """One Service's outcome: a plan, or the error that prevented it."""

    ref: ServiceRef
    operation: Operation
    plan: Plan | None = None
    error: str | None = None
    error_field: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the exception behind ``error`` (``--debug`` prints its stack trace)
    cause: BaseException | None = None

    @property
    def changed(self) -> bool:
        return self.plan is not None and not self.plan.empty


class Abort(Exception):
    """A problem that fails every Service alike (credentials, permissions, region): stop the run."""

    def __init__(self, error: UserError, cause: BaseException) -> None:
        super().__init__(error.message)
        self.error = error
        self.cause = cause


def plan_one(
    provider: Provider,
    svc: Obj,
    operation: Operation,
    nodes: Sequence[Obj],
    settings: IntentSettings,
    *,
    from_files: bool,
) -> ServiceResult:
    ref = service_ref(svc)
    result = ServiceResult(ref=ref, operation=operation)
    if from_files and manifests.has_placeholder_uid(svc):
        result.notes.append(
            "placeholder UID (the manifest has none): names will differ once the API server assigns one"
        )
    try:
        if operation == "delete":
            result.plan = provider.plan_delete(ref)
            return result
        if from_files and (why := manifests.missing_node_ports(svc)):
            raise InvalidService("spec.ports", why)
        intent = build_intent(svc, nodes, settings, provider)
        result.plan = provider.plan(intent)
    except InvalidService as exc:
        result.error, result.error_field = str(exc), exc.field
    except Exception as exc:
        explained = describe(exc, provider)
        if explained is not None and explained.fatal:
            raise Abort(explained, exc) from exc
        result.error = explained.message if explained else f"{type(exc).__name__}: {exc}"
        result.cause = exc
    return result


def plan_all(
    provider: Provider,
    selected: Sequence[tuple[Obj, Operation]],
    nodes: Sequence[Obj],
    cluster: str,
    *,
    from_files: bool = False,
    progress: Progress | None = None,
) -> list[ServiceResult]:
    settings = IntentSettings(cluster=cluster)
    results: list[ServiceResult] = []
    for svc, operation in selected:
        results.append(plan_one(provider, svc, operation, nodes, settings, from_files=from_files))
        if progress is not None:
            progress.advance(results[-1].ref.key)
    return results


def read_round(provider: Provider) -> AbstractContextManager[Any]:
    """The provider's read round (cached account-wide listings for many plans), if it has one.

    Providers that offer ``read_round()`` (:func:`lbprov.provider.read_round`, as the controller's
    batches use it) answer N plans with far fewer than N rounds of reads; others plan Service by
    Service.
    """
    return provider_read_round(provider) or nullcontext()


def exit_code(results: Sequence[ServiceResult]) -> int:
    if any(r.error for r in results):
        return EXIT_ERROR
    if any(r.changed for r in results):
        return EXIT_CHANGES
    return EXIT_OK


# -- output ---------------------------------------------------------------------------------------------


def use_colour(args: argparse.Namespace, stream: IO[str]) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def summary_counts(results: Sequence[ServiceResult]) -> dict[str, int]:
    counts = {
        "services": len(results),
        "changed": sum(1 for r in results if r.changed),
        "unchanged": sum(1 for r in results if r.plan is not None and r.plan.empty),
        "failed": sum(1 for r in results if r.error),
        "create": 0,
        "update": 0,
        "replace": 0,
        "delete": 0,
        "adopt": 0,
    }
    for r in results:
        if r.plan is not None:
            for action, n in r.plan.counts().items():
                counts[action] += n
    return counts


def run_document(
    command: str,
    provider: str,
    cluster: str,
    source: str,
    results: Sequence[ServiceResult],
    code: int,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``--output json`` document (schema ``lbprov/schemas/plan-v1.json``)."""
    plans = []
    for r in results:
        if r.plan is not None:
            entry = plan_to_json(r.plan)
            entry["notes"] = list(r.notes)
            plans.append(entry)
    errors = [
        {
            "service": {"namespace": r.ref.namespace, "name": r.ref.name, "uid": r.ref.uid},
            "operation": r.operation,
            "field": r.error_field,
            "message": r.error,
        }
        for r in results
        if r.error
    ]
    doc: dict[str, Any] = {
        "schema": RUN_SCHEMA,
        "command": command,
        "provider": provider,
        "cluster": cluster,
        "source": source,
        "plans": plans,
        "errors": errors,
        "summary": summary_counts(results),
        "notes": list(notes),
        "exit_code": code,
    }
    if extra:
        doc.update(extra)
    return doc


def render_text(results: Sequence[ServiceResult], provider: str, *, colour: bool) -> str:
    red, reset = ("\033[31m", "\033[0m") if colour else ("", "")
    blocks: list[str] = []
    for r in results:
        if r.plan is not None:
            text = render_plan(r.plan, colour=colour)
        else:
            text = f"{r.ref.key} ({provider}, {r.operation})\n  {red}error: {r.error}{reset}"
        for note in r.notes:
            text += f"\n  note: {note}"
        blocks.append(text)
    return "\n\n".join(blocks)


def summary_line(results: Sequence[ServiceResult]) -> str:
    """The Services' outcome and, as terraform ends its plan, the resource totals on a second line."""
    c = summary_counts(results)
    parts = [f"{c['changed']} would change", f"{c['unchanged']} unchanged"]
    if c["failed"]:
        parts.append(f"{c['failed']} could not be planned")
    noun = "Service" if c["services"] == 1 else "Services"
    return f"{c['services']} {noun}: " + ", ".join(parts) + ".\n" + resource_totals(c)


def resource_totals(c: Mapping[str, int]) -> str:
    """``Plan: 26 to create, 0 to update, 0 to replace, 0 to delete.`` over every Service."""
    if not any(c[a] for a in ("adopt", "create", "update", "replace", "delete")):
        return "Plan: no changes."
    text = f"{c['create']} to create, {c['update']} to update, {c['replace']} to replace, {c['delete']} to delete"
    if c["adopt"]:
        text = f"{c['adopt']} to adopt, " + text
    return f"Plan: {text}."


def write_document(doc: Mapping[str, Any], output: str, out: IO[str]) -> None:
    """The run document as JSON or YAML (the same content: YAML is written from the JSON form)."""
    text = json.dumps(doc, indent=2, sort_keys=True, default=str)
    if output == "yaml":
        text = yaml.safe_dump(json.loads(text), sort_keys=True, default_flow_style=False, width=120)
        out.write(text)
        return
    out.write(text + "\n")


# -- running --------------------------------------------------------------------------------------------


def fail(
    args: argparse.Namespace, error: UserError | str, cause: BaseException | None, stderr: IO[str]
) -> int:
    if getattr(args, "debug", False) and cause is not None:
        traceback.print_exception(cause, file=stderr)
    print(f"lbprov {args.command}: error: {error}", file=stderr)
    if getattr(args, "output", None) == "json":  # one JSON document, whatever happened
        category = error.category if isinstance(error, UserError) else "input"
        doc = run_document(
            args.command,
            str(getattr(args, "provider", "") or ""),
            str(getattr(args, "cluster_name", None) or ""),
            "files" if getattr(args, "filename", None) else "cluster",
            [],
            EXIT_ERROR,
            extra={"error": {"category": category, "message": str(error)}},
        )
        print(json.dumps(doc, indent=2, sort_keys=True), file=sys.stdout)
    return EXIT_ERROR


class OncePerRun(logging.Filter):
    """Lets each distinct warning through once per run.

    Providers warn about a node per Service they plan ("node n1: ... skipped"): with 3 such nodes
    and 4 Services that is 12 lines saying 3 things. A record is a repeat when its logger, level,
    format and arguments are the same as one already shown.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, int, str, str]] = set()
        # logging runs a handler's filters outside the handler's lock: Services planned on several
        # threads would otherwise both find a warning unseen and show it twice.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("lbprov"):
            return False  # urllib3's retries and the SDKs' chatter: the one-line error says it (--debug shows it)
        key = (record.name, record.levelno, str(record.msg), repr(record.args))
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        return True


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(f": {record.levelname}: ", f": {record.levelname.lower()}: ", 1)


@contextmanager
def run_warnings(command: str, stream: IO[str], *, debug: bool) -> Iterator[None]:
    """lbprov's and the providers' warnings during a plan/gc run go to ``stream``, each once, as
    ``lbprov plan: warning: ...`` (with ``--debug``: every record of every logger, repeats included)."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    handler.setFormatter(_LowerLevelFormatter(f"lbprov {command}: %(levelname)s: %(message)s"))
    if not debug:
        handler.addFilter(OncePerRun())
    root = logging.getLogger()
    old_level = root.level
    if debug:
        root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def guarded(
    args: argparse.Namespace,
    body: Callable[[], int],
    *,
    provider_name: str | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run ``body``; turn recognised errors into one line on stderr and exit 1 (``--debug``: traceback)."""
    err = stderr if stderr is not None else sys.stderr
    if not getattr(args, "debug", False):
        # SDK credential chains log their own multi-line failure report as warnings; the one-line
        # error below says the same (--debug keeps them).
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    provider_cls: Any = None
    if provider_name:
        try:
            provider_cls = load_provider(provider_name)
        except Exception:
            provider_cls = None
    try:
        with run_warnings(args.command, err, debug=getattr(args, "debug", False)):
            return body()
    except Abort as exc:
        return fail(args, exc.error, exc.cause, err)
    except KeyboardInterrupt:
        print(f"lbprov {args.command}: interrupted", file=err)
        return EXIT_ERROR
    except Exception as exc:
        explained = describe(exc, provider_cls, args.command)
        if explained is None:
            debug = getattr(args, "debug", False)
            if debug:
                traceback.print_exception(exc, file=err)
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            hint = "" if debug else " (run with --debug for the stack trace)"
            print(f"lbprov {args.command}: error: {type(exc).__name__}: {text}{hint}", file=err)
            return EXIT_ERROR
        return fail(args, explained, exc, err)


def run(
    args: argparse.Namespace,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[str] | None = None,
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    name: str = args.provider

    def body() -> int:
        default = default_provider(args)
        cluster = provider_settings(args, name).cluster_name
        inputs = read_inputs(args, stdin=stdin)
        selected = select(inputs.services, name, default, load_provider(name))
        provider = build_provider(args, name, read_only=True, kube=inputs.kube)
        provider.calls.fail_fast = True  # a cloud that cannot be reached ends the run once
        if not provider.calls.read_only:  # belt and braces: the guard is what makes plan safe
            raise CLIError(f"provider {name} did not honour read_only=True; refusing to plan", "bug")
        with (
            read_round(provider),
            Progress(len(selected), "planning", stream=err, quiet=args.quiet) as progress,
        ):
            results = plan_all(
                provider,
                selected,
                inputs.nodes,
                cluster,
                from_files=inputs.source == "files",
                progress=progress,
            )
        code = exit_code(results)
        if args.output in ("json", "yaml"):
            doc = run_document("plan", name, cluster, inputs.source, results, code, inputs.notes)
            write_document(doc, args.output, out)
        else:
            for note in inputs.notes:
                print(f"note: {note}", file=err)
            if not results:
                where = f"namespace {args.namespace}" if args.namespace else "any namespace"
                print(
                    f"No Services of type LoadBalancer for provider {name} in {where}: nothing to do.",
                    file=out,
                )
            else:
                print(render_text(results, name, colour=use_colour(args, out)), file=out)
                print("\n" + summary_line(results), file=out)
        if getattr(args, "debug", False):
            for r in results:
                if r.cause is not None:
                    traceback.print_exception(r.cause, file=err)
        return code

    return guarded(args, body, provider_name=name, stderr=err)
