"""What the AWS provider's three boto3 clients cost a process in memory, with and without the trimmed
service models (``lbprov_aws/trimmed_models.py``).

    python bench/aws_client_memory.py

Each figure comes from a fresh ``python -c`` (so it does not depend on the load of the machine or
on what another case left behind) that imports ``lbprov_aws.client`` and then, per case:

* ``imports``: nothing more (boto3, botocore, lbprov_aws);
* ``clients_full_models``: makes :class:`~lbprov_aws.client.AWSClients` with botocore's own data
  loader (every operation of ec2, elbv2 and elb, as before the trimming);
* ``clients_trimmed_models``: makes them as the provider does (the trimming loader).

``rss_mb`` is ``VmRSS`` after ``gc.collect()`` (what the process keeps), ``peak_mb`` its ``VmHWM``
(the full model is parsed once before it is trimmed, so the peak of start-up stays about where it
was: it is the RSS kept that the trimming lowers). ``saved_by_trimming_mb`` = full - trimmed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from common import print_json

_CLIENTS = """
from lbprov.cloudcalls import CloudCalls
from lbprov_aws.settings import AWSSettings
settings = AWSSettings(region="us-east-1", endpoint_url="http://127.0.0.1:1", access_key_id="x",
                       secret_access_key="x")
clients = lbprov_aws.client.AWSClients(settings, CloudCalls("aws", is_write=lambda op: True))
assert set(clients.clients) == {"ec2", "elbv2", "elb"}
"""

CASES = {
    "imports": "",
    "clients_full_models": "import botocore.loaders\n"
    "lbprov_aws.client.TrimmingLoader = botocore.loaders.Loader\n" + _CLIENTS,
    "clients_trimmed_models": _CLIENTS,
}

_PROLOGUE = "import gc, json\nimport lbprov_aws.client\n"
_EPILOGUE = """
gc.collect()
from pathlib import Path
status = {l.split(":")[0]: int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines()
          if l.startswith(("VmRSS:", "VmHWM:"))}
print(json.dumps(status))
"""


def measure(code: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROLOGUE + code + _EPILOGUE], capture_output=True, text=True, check=True
    )
    status = json.loads(out.stdout.splitlines()[-1])
    return {"rss_mb": round(status["VmRSS"] / 1024, 1), "peak_mb": round(status["VmHWM"] / 1024, 1)}


def main() -> int:
    report: dict[str, Any] = {name: measure(code) for name, code in CASES.items()}
    report["saved_by_trimming_mb"] = round(
        report["clients_full_models"]["rss_mb"] - report["clients_trimmed_models"]["rss_mb"], 1
    )
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
