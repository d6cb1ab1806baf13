"""Helpers for the fault tests: a server that accepts connections and never answers, kubeconfigs
pointing at it, and a runner for ``python -m lbprov`` as a separate process that times it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

# The CLI tests' helpers (the in-memory provider): loaded by path, as tests/cli/conftest.py does
# (the suite imports test modules with --import-mode=importlib).
for _name, _file in (("cli_testlib", "clilib.py"),):
    if _name not in sys.modules:
        import importlib.util

        _spec = importlib.util.spec_from_file_location(_name, Path(__file__).parents[1] / "cli" / _file)
        assert _spec is not None and _spec.loader is not None
        _module = importlib.util.module_from_spec(_spec)
        sys.modules[_name] = _module
        _spec.loader.exec_module(_module)

import cli_testlib  # noqa: E402,F401


class SilentServer:
    """Listens on 127.0.0.1, accepts every connection, reads what is sent, never writes a byte.

    This is the hang of issue 13: a TCP connection (and, for TLS, not even a handshake) succeeds,
    then nothing. ``connections`` counts accepted connections: a client that retries per Service
    shows up there.
    """

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        #: time.monotonic() of the first accepted connection
        self.first_connection: float | None = None
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            if self.first_connection is None:
                self.first_connection = time.monotonic()
            self._held.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self._sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def write_kubeconfig(path: Path, url: str) -> str:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@dataclass
class Finished:
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    argv: list[str] = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def lbprov_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LBPROV_", "KUBERNETES_"))}
    env.update(extra)
    return env


def start(argv: Sequence[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lbprov", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, time.monotonic()


def finish(proc: subprocess.Popen[str], started: float, timeout: float = 90.0) -> Finished:
    out, err = proc.communicate(timeout=timeout)
    return Finished(proc.returncode, time.monotonic() - started, out, err, list(map(str, proc.args)))  # type: ignore[arg-type]
