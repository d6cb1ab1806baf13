"""Legacy global HTTP health checks (``httpHealthChecks``): what cloud-provider-gcp's target pools use.

lbprov never creates one; the emulator holds them so that a predecessor load balancer can be made
exactly as upstream makes it, and its migration tested. google-cloud-compute has no message type for
this kind, so its fields are checked against the discovery document's ``HttpHealthCheck`` schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox import discovery
from lbprov_gcp.sandbox.errors import invalid
from lbprov_gcp.sandbox.fields import int_field

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    discovery.check_known_fields(body, "HttpHealthCheck")
    # compute.v1.json, HttpHealthCheck.port: "The TCP port number for the HTTP health check request.
    # The default value is80."
    int_field(body, "port", 80, 1, 65535)
    # HttpHealthCheck.requestPath: "The default value is/. This field does not support query parameters."
    path = body.setdefault("requestPath", "/")
    if not str(path).startswith("/") or "?" in str(path):
        raise invalid("resource.requestPath", f"'{path}' must start with '/' and take no query")
    # checkIntervalSec and timeoutSec: "The default value is5 seconds."; the thresholds: "The default
    # value is 2."
    interval = int_field(body, "checkIntervalSec", 5, 1, 300)
    timeout = int_field(body, "timeoutSec", 5, 1, 300)
    # HttpHealthCheck.timeoutSec: "It is invalid for timeoutSec to have greater value than
    # checkIntervalSec."
    if timeout > interval:
        raise invalid(
            "resource.timeoutSec", f"{timeout} must be less than or equal to checkIntervalSec ({interval})"
        )
    int_field(body, "healthyThreshold", 2, 1, 10)
    int_field(body, "unhealthyThreshold", 2, 1, 10)
    return body
