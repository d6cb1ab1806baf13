"""Regional health checks: the emulator's validation of ``regionHealthChecks`` writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lbprov_gcp.sandbox.errors import invalid
from lbprov_gcp.sandbox.fields import int_field

if TYPE_CHECKING:
    from lbprov_gcp.sandbox.emulator import ComputeEmulator
    from lbprov_gcp.sandbox.routes import Route

Json = dict[str, Any]


_HC_SUBOBJECT = {
    "HTTP": "httpHealthCheck",
    "HTTPS": "httpsHealthCheck",
    "HTTP2": "http2HealthCheck",
    "TCP": "tcpHealthCheck",
    "SSL": "sslHealthCheck",
    "GRPC": "grpcHealthCheck",
}


def validate(emu: ComputeEmulator, route: Route, body: Json, _old: Json | None) -> Json:
    hc_type = body.get("type")
    if hc_type not in _HC_SUBOBJECT:
        raise invalid("resource.type", f"'{hc_type}'; a health check needs one of {', '.join(_HC_SUBOBJECT)}")
    sub_key = _HC_SUBOBJECT[hc_type]
    for other in _HC_SUBOBJECT.values():
        if other != sub_key and other in body:
            raise invalid(f"resource.{other}", f"does not match the health check type {hc_type}")
    sub = body.setdefault(sub_key, {})
    spec = sub.get("portSpecification", "USE_FIXED_PORT")
    if spec == "USE_FIXED_PORT":
        port = int(sub.get("port", 80))
        if not 1 <= port <= 65535:
            raise invalid(f"resource.{sub_key}.port", f"{port} is not in [1, 65535]")
        sub["port"] = port
    if hc_type in ("HTTP", "HTTPS", "HTTP2"):
        path = sub.setdefault("requestPath", "/")
        if not path.startswith("/"):
            raise invalid(f"resource.{sub_key}.requestPath", f"'{path}' must start with '/'")
        sub.setdefault("proxyHeader", "NONE")
    interval = int_field(body, "checkIntervalSec", 5, 1, 300)
    timeout = int_field(body, "timeoutSec", 5, 1, 300)
    if timeout > interval:
        raise invalid(
            "resource.timeoutSec", f"{timeout} must be less than or equal to checkIntervalSec ({interval})"
        )
    int_field(body, "healthyThreshold", 2, 1, 10)
    int_field(body, "unhealthyThreshold", 2, 1, 10)
    return body
