"""A local AWS for demos and tests: moto's ThreadedMotoServer, seeded like a real cluster's VPC.

The server and its request recorder live in server.py.

One server can be reset and re-seeded many times (``MotoSandbox.reset`` + ``seed``), so a test module
starts it once.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Sequence
from typing import Any

import boto3  # type: ignore[import-untyped]

from lbprov import naming
from lbprov.model import SandboxNode
from lbprov.provider import SandboxCloud
from lbprov_aws.sandbox import at_scale
from lbprov_aws.sandbox.server import RequestRecorder, _RecordingMotoServer

__all__ = ["MotoSandbox", "RequestRecorder", "dump_requests"]

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")
#: Dummy credentials for the emulator only (moto accepts anything).
DUMMY_KEY = "testing"
AMI = "ami-03cf127a"


class MotoSandbox:
    """A running moto server; ``seed`` builds a cluster VPC with one instance per node."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        at_scale.install()  # moto without its per-request scans over every resource (at_scale.py)
        self.server = _RecordingMotoServer()
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.recorder = self.server.recorder

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=DUMMY_KEY,
            aws_secret_access_key=DUMMY_KEY,
        )

    def reset(self) -> None:
        """Wipe every resource (``POST /moto-api/reset``) and the request log."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        # A reset rebuilds every moto backend under moto's lock (EC2 loads its 1,301 AMIs): 0.05 s of
        # CPU, but up to 2 s of wall time on a loaded 2-core machine, and it once passed 10 s in a
        # full test run. A hang still ends, at 60 s.
        with urllib.request.urlopen(req, timeout=60):
            pass
        self.recorder.clear()

    def stop(self) -> None:
        self.server.stop()

    def settings(self, cluster: str) -> dict[str, Any]:
        return {
            "cluster_name": cluster,
            "region": REGION,
            "endpoint_url": self.endpoint,
            "access_key_id": DUMMY_KEY,
            "secret_access_key": DUMMY_KEY,
            # The emulator needs no client-side rate limit; keep tests and demos fast.
            "reads_per_second": 0,
            "writes_per_second": 0,
            "connect_timeout": 5,
            "read_timeout": 30,
        }

    def seed(self, nodes: Sequence[str], *, cluster: str = "sandbox") -> SandboxCloud:
        """Create the cluster's VPC (public + private subnet in two AZs, tagged for the cluster and
        the ELB roles; an internet gateway route for the public ones), a cluster-tagged node security
        group and one instance per node, alternating AZs."""
        ec2 = self.client("ec2")
        ckey = naming.cluster_tag_key(cluster)

        def tags(kind: str, name: str, **extra: str) -> list[dict[str, Any]]:
            items = {"Name": name, ckey: "owned", **extra}
            return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in items.items()]}]

        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tags("vpc", f"{cluster}-vpc"))["Vpc"][
            "VpcId"
        ]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        public: list[str] = []
        private: list[str] = []
        for i, zone in enumerate(ZONES):
            sub = ec2.create_subnet(
                VpcId=vpc,
                CidrBlock=f"10.0.{16 * i}.0/20",
                AvailabilityZone=zone,
                TagSpecifications=tags(
                    "subnet", f"{cluster}-public-{zone}", **{"kubernetes.io/role/elb": "1"}
                ),
            )["Subnet"]["SubnetId"]
            ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sub)
            public.append(sub)
            private.append(
                ec2.create_subnet(
                    VpcId=vpc,
                    CidrBlock=f"10.0.{128 + 16 * i}.0/20",
                    AvailabilityZone=zone,
                    TagSpecifications=tags(
                        "subnet", f"{cluster}-private-{zone}", **{"kubernetes.io/role/internal-elb": "1"}
                    ),
                )["Subnet"]["SubnetId"]
            )
        node_sg = ec2.create_security_group(
            GroupName=f"{cluster}-nodes",
            Description=f"{cluster} nodes",
            VpcId=vpc,
            TagSpecifications=tags("security-group", f"{cluster}-nodes"),
        )["GroupId"]
        counter = {"n": 0}

        def add_node(name: str) -> SandboxNode:
            i = counter["n"]
            counter["n"] += 1
            inst = ec2.run_instances(
                ImageId=AMI,
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.medium",
                SubnetId=private[i % len(private)],
                SecurityGroupIds=[node_sg],
                TagSpecifications=tags("instance", name),
            )["Instances"][0]
            zone = inst["Placement"]["AvailabilityZone"]
            return SandboxNode(name, f"aws:///{zone}/{inst['InstanceId']}", inst["PrivateIpAddress"], zone)

        seeded = [add_node(n) for n in nodes]
        self.recorder.clear()

        def create_certificate(domain: str = "example.com") -> str:
            arn: str = self.client("acm").request_certificate(DomainName=domain)["CertificateArn"]
            return arn

        return SandboxCloud(
            provider="aws",
            settings=self.settings(cluster),
            nodes=seeded,
            endpoint=self.endpoint,
            add_node=add_node,
            mutating_requests=self.recorder.mutating,
            extra={
                "cluster": cluster,
                "vpc_id": vpc,
                "vpc_cidr": "10.0.0.0/16",
                "public_subnets": public,
                "private_subnets": private,
                "node_security_group_id": node_sg,
                "requests": lambda: list(self.recorder.requests),
                "create_certificate": create_certificate,
                "sandbox": self,
            },
        )


def dump_requests(cloud: SandboxCloud) -> str:
    return json.dumps(cloud.extra["requests"](), indent=1)
