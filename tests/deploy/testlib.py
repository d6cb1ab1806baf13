"""Helpers of the deployment tests: render the kustomize overlays, parse the Dockerfile and the
terraform modules. Loaded by conftest.py as the module ``deploy_testlib`` (the suite runs with
``--import-mode=importlib``, where test modules cannot import their siblings by path)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbprov.testing import wait_for as wait_for  # the tests call it as lib.wait_for

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TERRAFORM = REPO / "terraform"
CLOUDS = ("aws", "gcp", "azure")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


# ---- kustomize -------------------------------------------------------------------------------------

_rendered: dict[str, list[dict[str, Any]]] = {}


def render(overlay: str) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/<overlay>`` as a list of objects (cached per session)."""
    if overlay not in _rendered:
        proc = subprocess.run(
            [KUBECTL, "kustomize", str(DEPLOY / overlay)], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, f"kubectl kustomize deploy/{overlay} failed:\n{proc.stderr}"
        _rendered[overlay] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    return _rendered[overlay]


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


# ---- Dockerfile ------------------------------------------------------------------------------------


@dataclass
class Instruction:
    cmd: str  # upper case: FROM, RUN, ...
    value: str  # the rest of the (joined) line
    stage: int  # index of the FROM stage it belongs to (-1 before the first FROM)
    lineno: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, or None for the shell form."""
        text = self.value.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


@dataclass
class Dockerfile:
    instructions: list[Instruction] = field(default_factory=list)

    def stages(self) -> int:
        return sum(1 for i in self.instructions if i.cmd == "FROM")

    def in_stage(self, stage: int, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.stage == stage and i.cmd == cmd]

    def final(self, cmd: str) -> list[Instruction]:
        return self.in_stage(self.stages() - 1, cmd)


#: Instructions of the Dockerfile reference (https://docs.docker.com/reference/dockerfile/).
DOCKERFILE_INSTRUCTIONS = frozenset(
    [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ]
)


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse a Dockerfile: comments, parser directives, ``\\`` continuations (with comment lines
    inside them dropped, as BuildKit does). Unknown instructions are an error, so that a typo fails
    the test instead of being ignored."""
    result = Dockerfile()
    stage = -1
    buffer: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = lineno
        if line.endswith("\\"):
            buffer.append(line[:-1])
            continue
        buffer.append(line)
        joined = " ".join(part.strip() for part in buffer).strip()
        buffer = []
        if not joined:
            continue
        cmd, _, value = joined.partition(" ")
        cmd = cmd.upper()
        if cmd not in DOCKERFILE_INSTRUCTIONS:
            raise ValueError(f"line {start}: unknown Dockerfile instruction {cmd!r}")
        if cmd == "FROM":
            stage += 1
        result.instructions.append(Instruction(cmd, value.strip(), stage, start))
    if buffer:
        raise ValueError("Dockerfile ends inside a line continuation")
    return result


def parse_key_values(value: str) -> dict[str, str]:
    """``ARG``/``ENV``/``LABEL`` arguments (``k=v k2="v 2"``) as a dict."""
    out: dict[str, str] = {}
    for m in re.finditer(r'([A-Za-z0-9_.\-]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?', value):
        raw = m.group(2)
        if raw is None:
            out[m.group(1)] = ""
            continue
        out[m.group(1)] = raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw
    return out


# ---- terraform -------------------------------------------------------------------------------------


def load_tf(module: str) -> dict[str, Any]:
    """All ``*.tf`` files of ``terraform/<module>`` parsed with python-hcl2, merged by block type."""
    import hcl2
    from hcl2 import SerializationOptions

    opts = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    merged: dict[str, list[Any]] = {}
    files = sorted((TERRAFORM / module).glob("*.tf"))
    assert files, f"terraform/{module} has no .tf files"
    for path in files:
        with path.open() as f:
            doc = hcl2.load(f, serialization_options=opts)
        for key, blocks in doc.items():
            if key.startswith("__"):
                continue
            merged.setdefault(key, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def tf_locals(module: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in load_tf(module).get("locals", []):
        out.update({k: v for k, v in block.items() if not k.startswith("__")})
    return out


def tf_blocks(module: str, kind: str) -> dict[str, dict[str, Any]]:
    """``resource``/``data`` blocks as ``{"<type>.<name>": body}``."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_tf(module).get(kind, []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{rtype}.{name}"] = body
    return out


def tf_named(module: str, kind: str) -> dict[str, dict[str, Any]]:
    """``variable``/``output`` blocks by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_tf(module).get(kind, []):
        for name, body in block.items():
            if not name.startswith("__"):
                out[name] = body
    return out


# ---- running `lbprov run` as a process ----------------------------------------------------------


class LbprovProcess:
    """``lbprov run`` in a subprocess (the real entry point), its output kept in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        import os
        import sys

        self.log_path = log_path
        self._log = log_path.open("wb")
        # The console script the image's ENTRYPOINT names, installed beside this interpreter.
        script = Path(sys.executable).with_name("lbprov")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "lbprov"]
        self.proc = subprocess.Popen(
            [*command, "run", *args],
            env={**{k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBE"))}, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: finish in-flight work, release the lease), then wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


def service_body(
    name: str,
    ports: list[tuple[int, str]],
    *,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    traffic_policy: str = "Cluster",
    lb_class: str | None = None,
) -> dict[str, Any]:
    """A Service to create through the API (NodePorts are allocated by the API server)."""
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations or {})},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": traffic_policy,
            "selector": {"app": name},
            "ports": [
                {"name": f"{proto.lower()}-{port}", "protocol": proto, "port": port, "targetPort": port}
                for port, proto in ports
            ],
        },
    }
    if lb_class:
        body["spec"]["loadBalancerClass"] = lb_class
    return body


def node_body(node: Any, *, exclude: bool = False) -> dict[str, Any]:
    """A Node for one sandbox instance (``lbprov.model.SandboxNode``)."""
    labels = {"kubernetes.io/hostname": node.name, "topology.kubernetes.io/zone": node.zone}
    if exclude:
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": labels},
        "spec": {"providerID": node.provider_id},
        "status": {
            "addresses": [{"type": "InternalIP", "address": node.internal_ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def settings_env(provider: str, settings: dict[str, Any]) -> dict[str, str]:
    """Provider settings as the documented environment variables (LBPROV_<PROVIDER>_<FIELD>)."""
    env: dict[str, str] = {}
    for key, value in settings.items():
        if value is None:
            continue
        name = "LBPROV_CLUSTER_NAME" if key == "cluster_name" else f"LBPROV_{provider.upper()}_{key.upper()}"
        env[name] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return env


# ---- the Docker build context ---------------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go's filepath.Match plus ``**``, as Docker implements it)."""
    out = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"  # any number of directories, none included
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


def docker_context(root: Path) -> list[str]:
    """The files ``docker build`` would send from ``root``, by its ``.dockerignore`` (last match
    wins; a pattern that matches a parent directory matches everything under it)."""
    import os

    rules: list[tuple[bool, re.Pattern[str]]] = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _dockerignore_regex(line.lstrip("!").strip("/"))))

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for negate, rx in rules:
            if any(rx.match(c) for c in candidates):
                result = not negate
        return result

    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv")]
        for name in filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not excluded(rel):
                files.append(rel)
    return sorted(files)
