"""The controller's CPU per AWS call, alone: botocore and lbprov's wrapper, without moto.

    python bench/aws_call_cpu.py [--calls 500] [--reps 3] [--gaps 0,0.02]

Why: the scale bench's controller CPU per AWS create (15-18 ms for 6 cloud writes, 2 Kubernetes
writes and a plan) is about twice the sum of the parts measured back to back. This isolates one
part: ``elbv2:CreateTargetGroup`` through :meth:`lbprov_aws.client.AWSClients.call` (CloudCalls,
the before-call hook, the write observers, botocore's validation, serialisation, SigV4, urllib3,
parsing) against a canned keep-alive answer served by another process, so that only the client's
CPU (``time.thread_time``) is counted.

``--gaps`` sleeps that many seconds before each call (0.02: the scale bench's injected latency):
sleeping costs no CPU, but on this 2-core machine the same call then costs about twice the CPU
(0.97 vs 1.96 ms, with the machine loaded). Code run after a wait finds cold caches, which is what
every call of the bench's workers does. ``--raw`` calls the botocore client method directly (only
the before-call hook of lbprov's left), which gives lbprov's wrapper's share.

Prints one JSON object: microseconds of CPU per call for each gap (median of the repetitions).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<CreateTargetGroupResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
    b"<CreateTargetGroupResult><TargetGroups><member>"
    b"<TargetGroupArn>arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-tg/73e2d6bc24d8a067"
    b"</TargetGroupArn><TargetGroupName>k8s-tg</TargetGroupName><Protocol>TCP</Protocol><Port>30001</Port>"
    b"<VpcId>vpc-12345678</VpcId><HealthCheckProtocol>TCP</HealthCheckProtocol>"
    b"<HealthCheckPort>traffic-port</HealthCheckPort><HealthCheckEnabled>true</HealthCheckEnabled>"
    b"<HealthCheckIntervalSeconds>10</HealthCheckIntervalSeconds>"
    b"<HealthCheckTimeoutSeconds>10</HealthCheckTimeoutSeconds><HealthyThresholdCount>3</HealthyThresholdCount>"
    b"<UnhealthyThresholdCount>3</UnhealthyThresholdCount><TargetType>instance</TargetType>"
    b"<IpAddressType>ipv4</IpAddressType></member></TargetGroups></CreateTargetGroupResult>"
    b"<ResponseMetadata><RequestId>f1b2c3d4</RequestId></ResponseMetadata></CreateTargetGroupResponse>"
)

PARAMS: dict[str, Any] = {
    "Name": "k8s-tg",
    "Protocol": "TCP",
    "Port": 30001,
    "VpcId": "vpc-12345678",
    "TargetType": "instance",
    "Tags": [{"Key": f"kubernetes.io/cluster/c{i}", "Value": "owned"} for i in range(5)],
    "HealthCheckProtocol": "TCP",
    "HealthCheckPort": "traffic-port",
    "HealthCheckEnabled": True,
    "HealthCheckIntervalSeconds": 10,
    "HealthCheckTimeoutSeconds": 10,
    "HealthyThresholdCount": 3,
    "UnhealthyThresholdCount": 3,
}


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS
    wbufsize = 65536  # headers and body in one write (else Nagle holds the body back 40 ms)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *_: Any) -> None:
        pass


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--gaps", default="0,0.02", help="seconds slept before each call, comma-separated")
    parser.add_argument("--raw", action="store_true", help="call botocore's method, not AWSClients.call")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        from lbprov_aws.provider import AWSProvider

        provider = AWSProvider.from_settings(
            {
                "cluster_name": "bench",
                "region": "us-east-1",
                "endpoint_url": f"http://127.0.0.1:{port}",
                "access_key_id": "bench",
                "secret_access_key": "bench",
                "vpc_id": "vpc-12345678",
                "reads_per_second": 0,  # no client-side rate limit: the CPU, not the bucket
                "writes_per_second": 0,
            }
        )
        raw = provider.clients.clients["elbv2"].create_target_group

        def one() -> None:
            if args.raw:
                raw(**PARAMS)
            else:
                provider.clients.call("elbv2:CreateTargetGroup", **PARAMS)

        for _ in range(100):  # connections, caches, lazily built botocore parts
            one()
        out: dict[str, Any] = {"calls": args.calls, "reps": args.reps, "raw": args.raw, "cpu_us_per_call": {}}
        for gap in (float(g) for g in args.gaps.split(",")):
            per_rep = []
            for _ in range(args.reps):
                spent = 0.0
                for _ in range(args.calls):
                    if gap:
                        time.sleep(gap)
                    start = time.thread_time()
                    one()
                    spent += time.thread_time() - start
                per_rep.append(spent / args.calls * 1e6)
            out["cpu_us_per_call"][f"gap {gap:g}s"] = round(statistics.median(per_rep), 1)
        print(json.dumps(out))
    finally:
        server.kill()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
