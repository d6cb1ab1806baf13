"""The sandbox's HTTP server keeps connections alive, as AWS does (sandbox/server.py): requests on
one connection are answered on it; LBPROV_SANDBOX_STOCK_MOTO=1 keeps werkzeug's server, which
closes every connection."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
from lbprov_aws.sandbox import MotoSandbox
from lbprov_aws.sandbox.server import _RecordingMotoServer

_BODY = "Action=DescribeVpcs&Version=2016-11-15"
_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    # moto reads the service from the credential scope (no signature check)
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


def _two_requests(endpoint: str) -> list[tuple[int, str | None, bool]]:
    """Two requests on one connection: (status, Connection header, socket still the first one)."""
    url = urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    out = []
    first = None
    try:
        for _ in range(2):
            conn.request("POST", "/", body=_BODY, headers=_HEADERS)
            resp = conn.getresponse()
            resp.read()
            first = first or conn.sock
            out.append(
                (resp.status, resp.getheader("Connection"), conn.sock is not None and conn.sock is first)
            )
    finally:
        conn.close()
    return out


def test_requests_on_one_connection_are_answered_on_it(moto_server: MotoSandbox) -> None:
    answers = _two_requests(moto_server.endpoint)
    assert [(status, header) for status, header, _ in answers] == [(200, None), (200, None)]
    assert all(same for _, _, same in answers)


def test_thirty_idle_connections_all_stay_open(moto_server: MotoSandbox) -> None:
    """cheroot closes every connection past its 10th idle one (``keep_alive_conn_limit``); lbprov's
    three clients at 10 workers keep about 30 idle between requests. A second request on each of 30
    open connections is answered on the same connection, without ``Connection: close``."""
    url = urlparse(moto_server.endpoint)
    conns = [http.client.HTTPConnection(url.hostname, url.port, timeout=10) for _ in range(30)]
    try:
        answers: list[tuple[int, str | None]] = []
        for _ in range(2):
            for conn in conns:  # every connection idle (kept alive) while the others are used
                conn.request("POST", "/", body=_BODY, headers=_HEADERS)
                resp = conn.getresponse()
                resp.read()
                answers.append((resp.status, resp.getheader("Connection")))
        assert answers == [(200, None)] * 60
        assert all(conn.sock is not None for conn in conns)
    finally:
        for conn in conns:
            conn.close()


def test_the_opt_out_serves_with_werkzeug_which_closes_each_connection() -> None:
    code = (
        "from lbprov_aws.sandbox import MotoSandbox\n"
        "import sys\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_sandbox_keep_alive import _two_requests\n"
        "box = MotoSandbox()\n"
        "try:\n"
        "    print(_two_requests(box.endpoint)[0][:2])\n"
        "finally:\n"
        "    box.stop()\n"
    )
    env = {**os.environ, "LBPROV_SANDBOX_STOCK_MOTO": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, timeout=120, capture_output=True, text=True
    )
    assert out.stdout.strip() == "(200, 'close')"


def test_a_server_that_cannot_start_raises_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's own start() waits for the ready event without a deadline: a server thread that died
    before binding (here: cheroot missing from an environment not reinstalled) hung the caller
    until pytest's 300 s timeout. The error now reaches the caller at once."""
    monkeypatch.setitem(sys.modules, "cheroot", None)  # `from cheroot import wsgi` raises ImportError
    monkeypatch.delenv("LBPROV_SANDBOX_STOCK_MOTO", raising=False)
    server = _RecordingMotoServer()
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"failed to start.*cheroot"):
        server.start()
    assert (
        time.monotonic() - started < 60
    )  # a hang lasted until pytest's 300 s timeout; 60 s bounds only that
