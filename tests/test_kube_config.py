"""Where KubeClient's configuration comes from (lbprov/kube/config.py): in-cluster (token rotation,
CA, host and port, IPv6), kubeconfig through the official loader (exec plugins refreshed per
request, insecure), and the controller's process never importing the official client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbprov.cli.errors import describe
from lbprov.kube.client import KubeClient, KubeError, KubeUnreachable
from lbprov.kube.config import KubeConfigError, TokenFile, in_cluster_config
from lbprov.sandbox.kube_api import CONTROLLER_NAMESPACE, KubeAPIServer


@pytest.fixture
def tls_server() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(tls=True, token="token-1") as srv:
        yield srv


def _in_cluster_env(srv: KubeAPIServer, token_file: Path) -> dict[str, str]:
    assert srv.ca_file is not None
    return {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(srv.port),
        "LBPROV_INCLUSTER_TOKEN_FILE": str(token_file),
        "LBPROV_INCLUSTER_CA_FILE": srv.ca_file,
    }


class ProjectedToken:
    """A token file laid out as the kubelet projects it: ``token`` -> ``..data/token``, and a
    rotation swaps the ``..data`` symlink to a new timestamped directory atomically."""

    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.generation = 0
        self.rotate(token)
        (root / "token").symlink_to("..data/token")

    @property
    def path(self) -> Path:
        return self.root / "token"

    def rotate(self, token: str) -> None:
        self.generation += 1
        version = self.root / f"..2026_11_30_{self.generation}"
        version.mkdir()
        (version / "token").write_text(token)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(version.name)
        os.replace(tmp, self.root / "..data")


# ---- in-cluster ---------------------------------------------------------------------------------


def test_in_cluster_token_is_re_read_after_rotation(
    tls_server: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = ProjectedToken(tmp_path, "token-1")
    for key, value in _in_cluster_env(tls_server, token.path).items():
        monkeypatch.setenv(key, value)
    client = KubeClient.in_cluster()
    assert client.list_services()[0]
    auth = client.transport.config.authorization
    assert isinstance(auth, TokenFile) and auth.period == 60.0

    # The kubelet rotates the token and the old one stops being accepted.
    token.rotate("token-2")
    tls_server.token = "token-2"
    # Within the refresh period the client still sends the token it read (once a minute, as
    # client-go and the official loader): the server refuses it...
    with pytest.raises(KubeError) as info:
        client.list_services()
    assert info.value.status == 401
    # ...and once the period has passed, the next request reads the new file and is accepted.
    auth.period = 0.0
    assert client.list_services()[0]
    assert client.get_service("default", "kubernetes") is not None


def test_token_file_refresh_period_and_a_failed_re_read(tmp_path: Path) -> None:
    now = [1000.0]
    path = tmp_path / "token"
    path.write_text("one\n")
    source = TokenFile(str(path), clock=lambda: now[0])
    assert source() == "Bearer one"
    path.write_text("two")
    now[0] += 59.9
    assert source() == "Bearer one"
    now[0] += 0.1
    assert source() == "Bearer two"
    # The file vanishes mid-rotation: the last token is kept, and read again a period later.
    path.unlink()
    now[0] += 60
    assert source() == "Bearer two"
    path.write_text("three")
    now[0] += 30
    assert source() == "Bearer two"
    now[0] += 30
    assert source() == "Bearer three"


def test_in_cluster_host_port_and_ipv6(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    files = {
        "LBPROV_INCLUSTER_TOKEN_FILE": str(tmp_path / "token"),
        "LBPROV_INCLUSTER_CA_FILE": str(tmp_path / "ca.crt"),
    }
    v4 = in_cluster_config(
        {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", **files}
    )
    assert (v4.host, v4.ca_file, v4.proxy) == ("https://10.96.0.1:443", str(tmp_path / "ca.crt"), None)
    v6 = in_cluster_config(
        {"KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443", **files}
    )
    assert v6.host == "https://[fd00:10:96::1]:443"
    assert v6.authorization is not None and v6.authorization() == "Bearer t"
    proxied = in_cluster_config(
        {
            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
            "HTTPS_PROXY": "http://proxy:3128",
            **files,
        }
    )
    assert proxied.proxy == "http://proxy:3128"


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT not set"),
        ("token", "service-account token file"),
        ("ca", "the CA file"),
    ],
)
def test_in_cluster_errors_name_what_is_missing(tmp_path: Path, drop: str, message: str) -> None:
    env = {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "LBPROV_INCLUSTER_TOKEN_FILE": str(tmp_path / "token"),
        "LBPROV_INCLUSTER_CA_FILE": str(tmp_path / "ca.crt"),
    }
    if drop != "token":
        (tmp_path / "token").write_text("t")
    if drop != "ca":
        (tmp_path / "ca.crt").write_text("x")
    env.pop(drop, None)
    with pytest.raises(KubeConfigError, match=message) as info:
        in_cluster_config(env)
    if drop == "token":
        assert str(tmp_path / "token") in str(info.value)
    # The CLI reports it as a Kubernetes configuration problem, with its hint.
    found = describe(info.value, command="run")
    assert found is not None and found.category == "kubernetes" and "--kubeconfig" in found.message


# ---- kubeconfig (the official loader) -----------------------------------------------------------


def _kubeconfig(path: Path, server: str, cluster: dict[str, Any], user: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(json.dumps(doc))  # JSON is YAML
    return str(path)


def test_kubeconfig_exec_plugin_token_is_refreshed_per_request_when_expired(
    tls_server: KubeAPIServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        textwrap.dedent(
            f"""
            import json
            with open({str(runs)!r}, "a") as f:
                f.write("run\\n")
            print(json.dumps({{
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {{"token": open({str(tmp_path / "current")!r}).read(),
                            "expirationTimestamp": "2020-01-01T00:00:00Z"}},
            }}))
            """
        )
    )
    (tmp_path / "current").write_text("token-1")
    assert tls_server.ca_file is not None
    path = _kubeconfig(
        tmp_path / "config",
        tls_server.url,
        {"certificate-authority": tls_server.ca_file},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin)],
                "interactiveMode": "Never",
            }
        },
    )
    client = KubeClient.from_kubeconfig(path)
    assert client.list_services()[0]
    before = len(runs.read_text().splitlines())
    # An expired credential: the loader's refresh hook runs the plugin again for each request,
    # so a rotated token is picked up at once.
    (tmp_path / "current").write_text("token-2")
    tls_server.token = "token-2"
    assert client.list_services()[0]
    assert len(runs.read_text().splitlines()) > before


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_kubeconfig_insecure_skip_tls_verify(tls_server: KubeAPIServer, tmp_path: Path) -> None:
    path = _kubeconfig(
        tmp_path / "config", tls_server.url, {"insecure-skip-tls-verify": True}, {"token": "token-1"}
    )
    client = KubeClient.from_kubeconfig(path)
    assert client.transport.config.verify_ssl is False
    assert client.get_service("default", "kubernetes") is not None


# ---- the controller's process does not import the official client -------------------------------

_PROBE = """
import atexit, json, os, runpy, sys
def _report():
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump(sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")), f)
atexit.register(_report)
_exit = os._exit
def _report_and_exit(code):  # lbprov run leaves through os._exit after a signal
    _report()
    _exit(code)
os._exit = _report_and_exit
sys.argv = ["lbprov", *json.loads(os.environ["PROBE_ARGV"])]
runpy.run_module("lbprov", run_name="__main__", alter_sys=True)
"""


def test_for_url_calls_never_import_kubernetes() -> None:
    with KubeAPIServer() as api:
        code = f"""
import sys
from lbprov.kube import Informer, KubeClient
from lbprov.controller.manager import Controller
from lbprov.controller.leader import LeaderElector
c = KubeClient.for_url({api.url!r})
svc = c.create_service("default", {{"metadata": {{"name": "w"}}, "spec": {{"ports": [{{"port": 80}}]}}}})
c.create_event(svc, type="Normal", reason="R", message="m")
c.patch_service_status("default", "w", {{"status": {{}}}})
items, rv = c.list_services()
for kind, obj in c.watch_services(rv, timeout_seconds=1):
    break
print(sorted(m for m in sys.modules if m == "kubernetes" or m.startswith("kubernetes.")))
"""
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lbprov_run_in_cluster_never_imports_kubernetes(tls_server: KubeAPIServer, tmp_path: Path) -> None:
    """The real controller process (``lbprov run``, configured as in a pod): it syncs its caches,
    takes the Lease and starts its workers, then stops on SIGTERM; at exit, no ``kubernetes``
    module was ever imported."""
    token = tmp_path / "token"
    token.write_text("token-1")
    out = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBERNETES_", "AWS_"))}
    env.update(
        _in_cluster_env(tls_server, token),
        POD_NAMESPACE=CONTROLLER_NAMESPACE,
        LBPROV_CLUSTER_NAME="probe",
        AWS_REGION="us-east-1",
        LBPROV_AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        PROBE_OUT=str(out),
        PROBE_ARGV=json.dumps(
            ["run", "--provider", "aws", "--metrics-address", "off", "--log-format", "text", "--leader-elect"]
        ),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", _PROBE], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "workers started" in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(60), "".join(lines[-30:])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        reader.join(5)
    assert proc.returncode == 0, "".join(lines[-30:])
    assert any("became leader" in line for line in lines)
    assert json.loads(out.read_text()) == []
    # It really used the API server as a pod does: authenticated lists, watches and the Lease.
    verbs = {(r.verb, r.resource) for r in tls_server.requests}
    assert {("list", "services"), ("watch", "services"), ("list", "nodes"), ("create", "leases")} <= verbs, (
        verbs
    )


def test_the_probe_sees_an_import_of_kubernetes(tmp_path: Path) -> None:
    """The probe above can fail: a kubeconfig run imports the official loader, and it says so."""
    out = tmp_path / "modules.json"
    config = _kubeconfig(tmp_path / "config", "http://127.0.0.1:1", {}, {"token": "t"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBERNETES_"))}
    env.update(
        PROBE_OUT=str(out), PROBE_ARGV=json.dumps(["plan", "--provider", "aws", "--kubeconfig", config])
    )
    env.update(
        AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", LBPROV_CLUSTER_NAME="p"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 120
    assert "kubernetes.config" in json.loads(out.read_text())


# ---- kubeconfig client certificates (TLS client authentication) ---------------------------------


def _issue(ca: tuple[Any, Any] | None, cn: str, *, usage: Any, ip: str | None = None) -> tuple[Any, Any]:
    """A key and a certificate for ``cn``, signed by ``ca`` (``None``: a self-signed CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca[1].subject if ca else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    cert = builder.sign(ca[0] if ca else key, hashes.SHA256())
    return key, cert


def _pem(key: Any, cert: Any) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization

    return (
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


def test_kubeconfig_client_certificate_is_presented(tmp_path: Path) -> None:
    import base64
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = _issue(None, "test-ca", usage=None)
    server_key, server_cert = _pem(
        *_issue(ca, "kube-apiserver", usage=ExtendedKeyUsageOID.SERVER_AUTH, ip="127.0.0.1")
    )
    client_key, client_cert = _pem(*_issue(ca, "lbprov-controller", usage=ExtendedKeyUsageOID.CLIENT_AUTH))
    ca_pem = _pem(*ca)[1]
    for name, data in (("ca.crt", ca_pem), ("server.crt", server_cert), ("server.key", server_key)):
        (tmp_path / name).write_bytes(data)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            peer = self.connection.getpeercert()
            cn = dict(x[0] for x in peer["subject"])["commonName"]
            data = json.dumps({"kind": "Node", "metadata": {"name": cn}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    ctx.load_cert_chain(str(tmp_path / "server.crt"), str(tmp_path / "server.key"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    url = f"https://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        path = _kubeconfig(
            tmp_path / "config",
            url,
            {"certificate-authority-data": b64(ca_pem)},
            {"client-certificate-data": b64(client_cert), "client-key-data": b64(client_key)},
        )
        client = KubeClient.from_kubeconfig(path)
        node = client.get_node("any")
        assert node is not None and node["metadata"]["name"] == "lbprov-controller"
        # Without the certificate the server ends the handshake: no HTTP answer at all.
        bare = _kubeconfig(
            tmp_path / "bare", url, {"certificate-authority-data": b64(ca_pem)}, {"token": "t"}
        )
        no_cert = KubeClient.from_kubeconfig(bare)
        no_cert.transport.retries = 0
        with pytest.raises(KubeUnreachable) as info:
            no_cert.get_node("any")
        assert info.value.endpoint == url
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- a TLS failure says which CA to check -------------------------------------------------------


def test_a_tls_failure_names_where_the_ca_came_from(
    tls_server: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's certificate is signed by a CA other than the one configured: in-cluster the
    error names the service account's CA file, from a kubeconfig its certificate-authority (it
    used to name the kubeconfig in both, which sent an in-cluster user looking for a file that
    does not exist)."""
    with KubeAPIServer(tls=True, token="token-1") as other:
        assert other.ca_file is not None and other.ca_file != tls_server.ca_file
        token = ProjectedToken(tmp_path, "token-1")
        env = {**_in_cluster_env(tls_server, token.path), "LBPROV_INCLUSTER_CA_FILE": other.ca_file}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(KubeUnreachable) as in_cluster:
            KubeClient.in_cluster().list_services()
        assert f"check the service account's CA file {other.ca_file}" in str(in_cluster.value)
        assert "kubeconfig" not in str(in_cluster.value)

        path = _kubeconfig(
            tmp_path / "config",
            tls_server.url,
            {"certificate-authority": other.ca_file},
            {"token": "token-1"},
        )
        with pytest.raises(KubeUnreachable) as from_kubeconfig:
            KubeClient.from_kubeconfig(path).list_services()
        assert "check the certificate-authority of the kubeconfig" in str(from_kubeconfig.value)
