"""A local AWS for demos and tests: moto's ThreadedMotoServer, seeded like a real cluster's VPC.

The server's WSGI app is wrapped by :class:`RequestRecorder`, which notes ``<service>:<Action>`` of
every request moto receives. ``mutating_requests()`` is therefore what the emulator saw, not what
our client counted: the read-only proof of ``lbprov plan`` relies on that.

One server can be reset and re-seeded many times (``MotoSandbox.reset`` + ``seed``), so a test module
starts it once.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from io import BytesIO
from typing import Any
from urllib.parse import parse_qs

import boto3  # type: ignore[import-untyped]
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from lbprov import naming
from lbprov.model import SandboxNode
from lbprov.provider import SandboxCloud

REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b")
#: Dummy credentials for the emulator only (moto accepts anything).
DUMMY_KEY = "testing"
AMI = "ami-03cf127a"
_READ_PREFIXES = ("Describe", "Get", "List")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _service_of(environ: dict[str, Any], params: dict[str, list[str]]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        service = scope[3] if len(scope) > 3 else ""
    if service == "elasticloadbalancing":
        return "elbv2" if params.get("Version", [""])[0] == "2015-12-01" else "elb"
    return service or "unknown"


class RequestRecorder:
    """WSGI middleware noting ``<service>:<Action>`` of each request (query and JSON protocols)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/moto-api"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = BytesIO(body)
            params = parse_qs(environ.get("QUERY_STRING", ""))
            if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                params.update(parse_qs(body.decode("utf-8", "replace")))
            action = params.get("Action", [""])[0]
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if not action and target:
                action = target.rsplit(".", 1)[-1]
            with self.lock:
                self.requests.append(
                    f"{_service_of(environ, params)}:{action or environ.get('REQUEST_METHOD')}"
                )
        return self.app(environ, start_response)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def mutating(self) -> list[str]:
        with self.lock:
            return [r for r in self.requests if not r.partition(":")[2].startswith(_READ_PREFIXES)]


class _RecordingMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose app is wrapped by a :class:`RequestRecorder`."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.recorder = RequestRecorder(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, self.recorder, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoSandbox:
    """A running moto server; ``seed`` builds a cluster VPC with one instance per node."""

    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
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
        with urllib.request.urlopen(req, timeout=10):
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
