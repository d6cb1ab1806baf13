"""``lbprov gc``: find (and with ``--apply``, delete) load balancers that leaked.

A load balancer leaks when its Service went away while no controller was running, or when the
Service stopped wanting it: its type changed, its class changed, or its annotations now ask for a
different kind of load balancer than the one that exists. ``gc`` lists what the provider finds by
this cluster's ownership tags (:meth:`Provider.list_owned`; a resource without the tag is never
listed, so it can never be deleted), compares each with the cluster's Services by UID, and prints
the delete plan of the garbage.

``--apply`` carries it out after a confirmation prompt (``--yes`` skips it; without a terminal and
without ``--yes`` it refuses). Services are read from the cluster, all namespaces: deciding that a
load balancer is garbage needs the complete list of Services, which manifest files cannot give.

Cluster names are not unique, so a load balancer counts as this cluster's only if it also carries
this cluster's *identity* (``lbprov.io/cluster-id``, the UID of the ``kube-system`` Namespace). One
of another identity, or of none (made before identities existed, or by a cluster of the same name),
is listed as "not this cluster" and left alone, unless named with ``--include-foreign NAME``. And a
cluster with no Service at all whose every load balancer looks like garbage is more likely the
wrong cluster (or one being restored) than a leak: ``--apply`` refuses that without ``--force``.

Exit codes: 0 no garbage (or all of it deleted with ``--apply``), 2 garbage found, 1 error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

from lbprov import naming
from lbprov.cli.errors import CLIError, describe
from lbprov.cli.options import (
    add_default_provider_option,
    add_provider_options,
    build_provider,
    default_provider,
    provider_settings,
)
from lbprov.cli.plan import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    Obj,
    ServiceResult,
    add_cluster_options,
    add_common_options,
    cluster_client,
    guarded,
    listed,
    provider_for,
    read_round,
    run_document,
    use_colour,
    wants_load_balancer,
    write_document,
)
from lbprov.intent import IntentSettings, build_intent, service_ref
from lbprov.model import Action, InvalidService, OwnedLoadBalancer, Plan
from lbprov.progress import Progress
from lbprov.provider import Provider
from lbprov.render import render_plan

Status = Literal["in-use", "garbage", "unknown", "not-this-cluster"]


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "gc",
        help="find load balancers owned by this cluster whose Service is gone; --apply deletes them",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 no garbage (or deleted with --apply), 2 garbage found, 1 error.",
    )
    add_provider_options(parser)
    add_default_provider_option(parser)
    add_cluster_options(parser)
    parser.add_argument(
        "-n",
        "--namespace",
        help="report (and with --apply, delete) only load balancers of Services in this namespace; "
        "whether one is garbage is still decided from the Services of every namespace",
    )
    parser.add_argument("--apply", action="store_true", help="delete the garbage (asks for confirmation)")
    parser.add_argument("-y", "--yes", action="store_true", help="with --apply: do not ask for confirmation")
    parser.add_argument(
        "--include-foreign",
        action="append",
        default=[],
        metavar="NAME",
        help="examine (and with --apply delete, if garbage) the load balancer NAME even though it "
        "carries another cluster identity or none (repeatable)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --apply: delete even when the cluster has no Service at all (every load balancer "
        "would go)",
    )
    add_common_options(parser)
    parser.set_defaults(func=run)


@dataclass
class Finding:
    """One owned load balancer and what gc makes of it."""

    owned: OwnedLoadBalancer
    status: Status
    reason: str
    plan: Plan | None = None
    error: str | None = None


def _old_kind_plan(lb: OwnedLoadBalancer, plan: Plan) -> Plan | None:
    """The part of a Service's plan that deletes ``lb`` (its annotations now want another kind)."""
    parts = {(lb.kind, lb.name), *lb.resources}
    names = {lb.name} | {name for _, name in lb.resources}
    deletes = tuple(
        c
        for c in plan.changes
        if c.action is Action.DELETE and ((c.kind, c.name) in parts or c.name in names)
    )
    if not deletes:
        return None
    return Plan(provider=plan.provider, ref=plan.ref, changes=deletes, intent=None, data=plan.data)


def examine(
    provider: Provider,
    owned: Sequence[OwnedLoadBalancer],
    services: Sequence[Obj],
    nodes: Sequence[Obj],
    cluster: str,
    default_provider: str | None,
    progress: Progress | None = None,
    *,
    cluster_id: str | None = None,
    include: frozenset[str] = frozenset(),
) -> list[Finding]:
    """Classify every owned load balancer as in use, garbage (with its delete plan), unknown, or
    not this cluster's (another identity or none, and not named in ``include``)."""
    by_uid = {service_ref(s).uid: s for s in services}
    settings = IntentSettings(cluster=cluster)
    findings: list[Finding] = []
    for lb in sorted(owned, key=lambda o: (o.ref.key, o.name)):
        svc = by_uid.get(lb.ref.uid)
        if lb.name not in include and not naming.identity_matches(
            {naming.CLUSTER_ID_TAG: lb.cluster_id or ""}, cluster_id
        ):
            findings.append(Finding(lb, "not-this-cluster", _foreign_reason(lb, cluster_id)))
            if progress is not None:
                progress.advance(lb.name)
            continue
        try:
            if svc is None:
                reason = f"Service {lb.ref.key} (uid {lb.ref.uid}) no longer exists"
                findings.append(Finding(lb, "garbage", reason, provider.plan_delete(lb.ref)))
            elif provider_for(svc, provider.name, default_provider) != provider.name:
                cls = (svc.get("spec") or {}).get("loadBalancerClass")
                reason = f"Service {lb.ref.key} is now served by class {cls or '(none: no default provider)'}"
                findings.append(Finding(lb, "garbage", reason, provider.plan_delete(lb.ref)))
            elif not wants_load_balancer(svc):
                meta = svc.get("metadata") or {}
                why = (
                    "is being deleted"
                    if meta.get("deletionTimestamp")
                    else f"is now of type {(svc.get('spec') or {}).get('type')}"
                )
                reason = f"Service {lb.ref.key} {why}"
                findings.append(Finding(lb, "garbage", reason, provider.plan_delete(lb.ref)))
            else:
                intent = build_intent(svc, nodes, settings, provider)
                partial = _old_kind_plan(lb, provider.plan(intent))
                if partial is None:
                    findings.append(Finding(lb, "in-use", f"in use by Service {lb.ref.key}"))
                else:
                    reason = f"Service {lb.ref.key} now wants a different load balancer than this {lb.kind}"
                    findings.append(Finding(lb, "garbage", reason, partial))
        except InvalidService as exc:
            findings.append(Finding(lb, "unknown", f"kept: Service {lb.ref.key} cannot be planned ({exc})"))
        except Exception as exc:
            explained = describe(exc, provider, "gc")
            if explained is not None and explained.fatal:
                raise
            message = explained.message if explained else f"{type(exc).__name__}: {exc}"
            findings.append(Finding(lb, "unknown", f"kept: {message}", error=message))
        if progress is not None:
            progress.advance(lb.name)
    return findings


def _foreign_reason(lb: OwnedLoadBalancer, cluster_id: str | None) -> str:
    hint = f"left alone (--include-foreign {lb.name} to examine it)"
    if not lb.cluster_id:
        return (
            f"carries no cluster identity ({naming.CLUSTER_ID_TAG}): another cluster of the same name, or "
            f"made before identities; {hint}"
        )
    return (
        f"belongs to cluster identity {lb.cluster_id}, not this cluster's ({cluster_id}): check "
        f"--kubeconfig/--context; {hint}"
    )


def _refuse_empty_cluster(garbage: int, services: int, force: bool) -> None:
    """An empty cluster whose every load balancer looks like garbage is more likely the wrong
    cluster, or one being restored, than a leak: refuse to delete without ``--force``."""
    if garbage and not services and not force:
        raise CLIError(
            f"refusing to delete {garbage} load balancer(s): the cluster has no Service at all, so "
            "every load balancer it owns looks like garbage; that is what pointing gc at the wrong or "
            "a freshly restored cluster looks like. Check --kubeconfig/--context and --cluster-name, "
            "and pass --force if they really are all leaks"
        )


def _confirm(count: int, stdin: IO[str], out: IO[str]) -> bool:
    isatty = getattr(stdin, "isatty", None)
    if not (isatty and isatty()):
        raise CLIError(
            "refusing to delete without confirmation: stdin is not a terminal; pass --yes to confirm"
        )
    noun = "load balancer" if count == 1 else "load balancers"
    out.write(f"\nDelete the {count} {noun} listed above? Only 'yes' will be accepted: ")
    out.flush()
    return stdin.readline().strip() == "yes"


def _text(
    findings: Sequence[Finding], provider: str, cluster: str, namespace: str | None, *, colour: bool
) -> str:
    where = f" for Services in namespace {namespace}" if namespace else ""
    lines = [f"Load balancers owned by cluster {cluster!r} ({provider}){where}: {len(findings)}"]
    for f in findings:
        status = f.status.replace("-", " ") if f.status == "not-this-cluster" else f.status
        lines.append(f"  {f.owned.name} ({f.owned.kind}) {f.owned.ref.key}: {status}: {f.reason}")
    garbage = [f for f in findings if f.status == "garbage" and f.plan is not None]
    for f in garbage:
        assert f.plan is not None
        lines.append("")
        lines.append(render_plan(f.plan, colour=colour))
    lines.append("")
    foreign = sum(1 for f in findings if f.status == "not-this-cluster")
    lines.append(
        f"{len(garbage)} garbage, {sum(1 for f in findings if f.status == 'in-use')} in use, "
        f"{sum(1 for f in findings if f.status == 'unknown')} kept (could not tell)"
        + (f", {foreign} not this cluster (left alone)." if foreign else ".")
    )
    return "\n".join(lines)


def run(
    args: argparse.Namespace,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[str] | None = None,
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    inp = stdin if stdin is not None else sys.stdin
    name: str = args.provider

    def body() -> int:
        if args.yes and not args.apply:
            raise CLIError("--yes only makes sense with --apply")
        if args.force and not args.apply:
            raise CLIError("--force only makes sense with --apply")
        default = default_provider(args)
        cluster = provider_settings(args, name).cluster_name
        kube = cluster_client(args)
        # Every namespace, whatever -n says: a load balancer is garbage only if no Service anywhere
        # still wants it (by UID); -n narrows what is reported and deleted, never what is read.
        services = listed(kube.list_services(None))
        nodes = listed(kube.list_nodes())
        # Writable only when asked to apply; the examination runs read-only either way.
        provider = build_provider(args, name, read_only=not args.apply, kube=kube)
        provider.calls.fail_fast = True  # a cloud that cannot be reached ends the run once
        from lbprov.kube.facts import cluster_identity  # lazily: the kubernetes client is slow to import

        cluster_id = provider_settings(args, name).cluster_id or cluster_identity(kube)
        with provider.calls.read_only_mode(), read_round(provider):
            owned = [o for o in provider.list_owned() if args.namespace in (None, o.ref.namespace)]
            with Progress(len(owned), "examining", stream=err, quiet=args.quiet) as progress:
                findings = examine(
                    provider,
                    owned,
                    services,
                    nodes,
                    cluster,
                    default,
                    progress,
                    cluster_id=cluster_id,
                    include=frozenset(args.include_foreign),
                )
        garbage = [f for f in findings if f.status == "garbage" and f.plan is not None]
        errors = [f for f in findings if f.error]
        code = EXIT_ERROR if errors else (EXIT_CHANGES if garbage else EXIT_OK)

        applied: list[str] = []
        failures: list[str] = []
        if args.output == "text":
            print(_text(findings, name, cluster, args.namespace, colour=use_colour(args, out)), file=out)
        if args.apply and garbage:
            _refuse_empty_cluster(len(garbage), len(services), args.force)
            if not args.yes and not _confirm(len(garbage), inp, err):
                print("Cancelled: nothing was deleted.", file=out)
                return EXIT_ERROR
            for f in garbage:
                assert f.plan is not None
                try:
                    provider.apply(f.plan)
                    applied.append(f.owned.name)
                    if args.output == "text":
                        print(f"deleted {f.owned.name} ({f.owned.kind}) of {f.owned.ref.key}", file=out)
                except Exception as exc:
                    explained = describe(exc, provider, "gc")
                    message = explained.message if explained else f"{type(exc).__name__}: {exc}"
                    failures.append(f"{f.owned.name}: {message}")
                    print(f"lbprov gc: error deleting {f.owned.name}: {message}", file=err)
            code = EXIT_ERROR if failures or errors else EXIT_OK

        if args.output in ("json", "yaml"):
            results = [
                ServiceResult(ref=f.plan.ref, operation="delete", plan=f.plan)
                for f in garbage
                if f.plan is not None
            ] + [ServiceResult(ref=f.owned.ref, operation="delete", error=f.error) for f in errors]
            owned_doc = [
                {
                    "name": f.owned.name,
                    "kind": f.owned.kind,
                    "service": {
                        "namespace": f.owned.ref.namespace,
                        "name": f.owned.ref.name,
                        "uid": f.owned.ref.uid,
                    },
                    "status": f.status,
                    "reason": f.reason,
                    "resources": [{"kind": k, "name": n} for k, n in f.owned.resources],
                }
                for f in findings
            ]
            doc = run_document(
                "gc",
                name,
                cluster,
                "cluster",
                results,
                code,
                extra={"owned": owned_doc, "applied": applied, "apply_errors": failures},
            )
            write_document(doc, args.output, out)
        return code

    return guarded(args, body, provider_name=name, stderr=err)
