"""moto's EC2 and Elastic Load Balancing requests answered without the Flask app around them.

Why: moto's server hands every request to a Flask app per service, whose only route for these
query-protocol services is ``/`` (``url_paths``: EC2's ``{0}/`` -> ``EC2Response.dispatch``,
ELB's ``{0}/$`` -> ``api_version_elb_backend``), wrapped by ``convert_to_flask_response``. Flask's
request context, URL matching, signals and response processing cost about 0.18 ms of the server's
CPU per request (0.66 ms against 0.49 ms for a ``DescribeVpcs``, 1,000 back to back), about a tenth
of a create's request, for work that changes nothing in the answer: the callback's status, headers
and body, and the one header Flask-CORS adds (``Access-Control-Allow-Origin: *``; moto's app is
``CORS(app)`` with its defaults, which send it on every response unless
``MOTO_DISABLE_GLOBAL_CORS`` is set).

:class:`DirectApp` does what that stack does for those requests and nothing else: the same request
class (moto's ``BackendRequest``), moto's request recorder, the same callback with the same
arguments, ``ClientError`` answered as ``convert_to_flask_response`` answers it, the same
``flask.Response`` and the CORS header. Everything else goes to moto's dispatcher as before: another
service or path, the moto API, an ``OPTIONS`` request or one with an ``Origin`` header (Flask-CORS's
preflight and origin handling), an unsigned request (moto infers its service from the body). The
service is the one moto's dispatcher infers (``infer_service_region_host``, from the signature's
credential scope). An exception from the callback propagates as it does through moto's app (Flask in
debug mode re-raises it) to the HTTP server, which answers 500.

tests/test_sandbox_direct.py replays the same requests with the same random seed through both paths
and compares the answers byte for byte. ``LBPROV_SANDBOX_STOCK_MOTO=1`` keeps moto's own path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: moto's backend (as its dispatcher names it) -> the callback its Flask route calls for ``/``.
_ROUTES: dict[str, Callable[..., Any]] = {}


def _routes() -> dict[str, Callable[..., Any]]:
    if not _ROUTES:
        from moto.ec2.responses import EC2Response
        from moto.elb.urls import api_version_elb_backend

        _ROUTES.update(ec2=EC2Response.dispatch, elb=api_version_elb_backend)
    return _ROUTES


class DirectApp:
    """WSGI: EC2 / ELB / ELBv2 query requests straight to moto's callback, the rest to ``app``."""

    def __init__(self, dispatcher: Any) -> None:
        #: moto's DomainDispatcherApplication: it names the service of a request
        self.dispatcher = dispatcher
        #: what answers every other request (the dispatcher)
        self.app: Callable[..., Any] = dispatcher
        from moto import settings

        self.cors = not settings.DISABLE_GLOBAL_CORS

    def _callback(self, environ: dict[str, Any]) -> Callable[..., Any] | None:
        if (
            environ.get("PATH_INFO") != "/"
            or environ.get("REQUEST_METHOD") == "OPTIONS"
            or "HTTP_ORIGIN" in environ
            or not environ.get("HTTP_AUTHORIZATION")
        ):
            return None
        host = self.dispatcher.infer_service_region_host(environ, "/")
        backend = self.dispatcher.get_backend_for_host(host) if host else None
        return _routes().get(backend) if isinstance(backend, str) else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        callback = self._callback(environ)
        if callback is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]
        from flask import Response
        from moto.moto_api import recorder
        from moto.moto_server.werkzeug_app import BackendRequest

        # convert_to_flask_response.__call__, without Flask's request context around it
        request = BackendRequest(environ)
        try:
            recorder._record_request(request)
            result = callback(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        response = Response(response=content, status=status, headers=headers)
        if request.method == "HEAD" and "content-length" in headers:
            response.headers["Content-Length"] = headers["content-length"]
        if self.cors and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = "*"  # Flask-CORS, no Origin in the request
        return response(environ, start_response)
