"""AWS crash cases at every write: a process applying a plan is SIGKILLed right after its k-th write,
for every k, and a fresh provider (a restart) must finish the job with no leak.

Where harness.py kills ``lbprov run`` at random moments, this walks every write of three
lifecycles against the AWS sandbox (moto behind the strict layer, in this process):

* ``nlb-create``: the first NLB of the cluster, with security groups (frontend group, the
  cluster's backend group and its node rules, target groups, the NLB, listeners);
* ``nlb-delete``: deleting it again (the NLB, target groups, frontend group, backend release);
* ``classic-delete``: deleting the cluster's last classic ELB (its group, and the shared
  ``k8s-elb-backend-<cluster>`` group with its node rule).

For each k a child process (``python aws_write_kills.py --child``) plans and applies, and a botocore
``after-call`` hook sends SIGKILL to the child itself once the k-th mutating request has been
answered: the write is done, the process dies before anything else. Then, in this process, a fresh
provider plans and applies until the plan is empty (a restart's reconcile): for ``nlb-create`` it
finishes the create (checking convergence) and then deletes the Service, and once more it is
deleted without finishing (a Service deleted while the controller was down). The check after
each run reads the emulator with plain boto3 clients: nothing of the Service and no lbprov group or
node rule of the cluster may remain.

``python tests/crash/aws_write_kills.py`` prints the figures (runs, kills, leaks) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # run as a script (the child) or imported by its test

from write_kills import Figures, converge, ref_of, run_child  # noqa: E402

CLUSTER = "crash"
CLUSTER_ID = "crash-cluster-identity"
ANN = "service.beta.kubernetes.io/aws-load-balancer-"
SCENARIOS = ("nlb-create", "nlb-delete", "classic-delete")


def _service(uid: str, kind: str) -> dict[str, Any]:
    ports = [(80, "TCP", 30080), (53, "UDP", 30053)] if kind == "nlb" else [(80, "TCP", 30080)]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "crash", "uid": uid, "annotations": {ANN + "type": kind}},
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": f"p{p}", "port": p, "protocol": proto, "nodePort": np} for p, proto, np in ports
            ],
        },
    }


def _provider(settings: dict[str, Any]) -> Any:
    from lbprov_aws import AWSProvider

    return AWSProvider.from_settings(
        {**settings, "cluster_id": CLUSTER_ID, "retry_initial_seconds": 0.001, "retry_max_seconds": 0.01}
    )


def _intent(provider: Any, job: dict[str, Any]) -> Any:
    from lbprov.intent import IntentSettings, build_intent

    return build_intent(job["service"], job["nodes"], IntentSettings(cluster=CLUSTER), provider)


def child(job: dict[str, Any]) -> int:
    """Plan and apply ``job["op"]`` (create or delete), SIGKILLed after the ``kill_after``-th write."""
    from lbprov_aws.operations import is_write

    provider = _provider(job["settings"])
    seen = {"writes": 0}

    def after_call(model: Any, http_response: Any = None, **_: Any) -> None:
        service = model.service_model.service_name
        prefix = {
            "elasticloadbalancing": "elbv2" if model.service_model.api_version == "2015-12-01" else "elb"
        }.get(service, service)
        if (
            is_write(f"{prefix}:{model.name}")
            and http_response is not None
            and http_response.status_code < 300
        ):
            seen["writes"] += 1
            if seen["writes"] == job["kill_after"]:
                os.kill(os.getpid(), signal.SIGKILL)

    for client in provider.clients.clients.values():
        client.meta.events.register("after-call.*.*", after_call)
    if job["op"] == "create":
        provider.apply(provider.plan(_intent(provider, job)))
    else:
        provider.apply(provider.plan_delete(ref_of(job)))
    print(json.dumps({"writes": seen["writes"]}), flush=True)
    return 0


def leaks_of(box: Any, uid: str) -> list[str]:
    """What of the Service, or of lbprov for the cluster, is left in the emulator (plain boto3)."""
    from lbprov import naming

    elbv2, elb, ec2 = box.client("elbv2"), box.client("elb"), box.client("ec2")
    out: list[str] = []
    lbs = elbv2.describe_load_balancers()["LoadBalancers"]
    out += [f"NLB {lb['LoadBalancerName']}" for lb in lbs if lb["LoadBalancerName"] == naming.lb_name(uid)]
    out += [f"target group {tg['TargetGroupName']}" for tg in elbv2.describe_target_groups()["TargetGroups"]]
    out += [
        f"classic ELB {lb['LoadBalancerName']}"
        for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]
    ]
    for sg in ec2.describe_security_groups()["SecurityGroups"]:
        name = sg["GroupName"]
        if name.startswith("k8s-"):  # classic, frontend and backend groups (the node group: <cluster>-nodes)
            out.append(f"security group {name}")
        for perm in sg.get("IpPermissions", []):
            for entry in perm.get("IpRanges", []) + perm.get("UserIdGroupPairs", []):
                if str(entry.get("Description", "")).startswith(
                    "lbprov.io/rule/"
                ) and "/elb-client=" not in str(entry.get("Description")):
                    out.append(
                        f"rule {perm['IpProtocol']}/{perm.get('FromPort')} in {sg['GroupId']} ({entry['Description']})"
                    )
    return sorted(out)


def run_scenario(scenario: str, box: Any, names: list[str], limit: int | None = None) -> Figures:
    """Every kill point of one scenario, each from a freshly seeded emulator (``limit``: only the
    first kill points). ``nlb-create`` recovers twice per kill point: the restart finishes the
    create (then deletes), or the Service was deleted while the controller was down."""
    from lbprov_aws.testing import node_objects

    figures = Figures(scenario)
    kind = "classic" if scenario == "classic-delete" else "nlb"
    variants = ("finish", "abandon") if scenario == "nlb-create" else ("delete",)
    k = 1
    while limit is None or k <= limit:
        for variant in variants:
            box.reset()
            cloud = box.seed(names, cluster=CLUSTER)
            uid = str(uuid.uuid4())
            job = {
                "settings": dict(cloud.settings),
                "service": _service(uid, kind),
                "nodes": node_objects(cloud),
            }
            if scenario != "nlb-create":
                setup = _provider(cloud.settings)
                if not converge(setup, lambda p=setup, j=job: p.plan(_intent(p, j))):
                    raise RuntimeError(f"{scenario}: the setup did not converge")
            op = "create" if scenario == "nlb-create" else "delete"
            killed, writes = run_child(HERE / "aws_write_kills.py", {**job, "op": op, "kill_after": k})
            figures.runs += 1
            if not killed:  # k is past the last write: every kill point was walked
                figures.writes = writes
                return figures
            figures.kills += 1
            figures.dirty_before_recovery += bool(leaks_of(box, uid))
            restart = _provider(cloud.settings)  # a restarted controller's provider
            if variant == "finish" and not converge(restart, lambda p=restart, j=job: p.plan(_intent(p, j))):
                figures.unconverged.append(f"{scenario} k={k}: the create did not converge")
            if not converge(restart, lambda p=restart, j=job: p.plan_delete(ref_of(j))):
                figures.unconverged.append(f"{scenario} k={k} {variant}: the delete did not converge")
            figures.leaks += [f"{scenario} k={k} {variant}: {leak}" for leak in leaks_of(box, uid)]
        k += 1
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--child")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    from lbprov_aws.sandbox import MotoSandbox

    box = MotoSandbox()
    results = []
    try:
        for scenario in args.scenario or SCENARIOS:
            figures = run_scenario(scenario, box, ["node-a", "node-b"])
            print(json.dumps(asdict(figures)), flush=True)
            results.append(figures)
    finally:
        box.stop()
    return 0 if all(not f.leaks and not f.unconverged for f in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
