"""A child process that answers JSON lines: the scale bench's controller and cloud emulator.

Commands go to the child's stdin one per line; each reply is one JSON object on its stdout. A
reader thread feeds a queue, so that a reply can be awaited with a deadline and a child that dies
is reported with its exit code (and the tail of its stderr) rather than hanging the bench.
"""

from __future__ import annotations

import json
import queue
import subprocess
import tempfile
import threading
from typing import Any


class ChildProcess:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._lines.put(line)
        self._lines.put(None)

    def send(self, cmd: str | dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((cmd if isinstance(cmd, str) else json.dumps(cmd)) + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 600) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self._name()} gave no answer within {timeout}s") from None
        if line is None:
            raise RuntimeError(f"{self._name()} exited ({self.proc.wait(5)}): {self.stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, cmd: str | dict[str, Any], timeout: float = 600) -> dict[str, Any]:
        self.send(cmd)
        return self.read(timeout)

    def stderr_tail(self, chars: int = 2000) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-chars:]

    def close(self, timeout: float = 30) -> None:
        """Wait for a child that was told to quit; kill it if it does not exit in time."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            self._stderr.close()

    def _name(self) -> str:
        return f"child process {self.proc.args[1] if isinstance(self.proc.args, list) else self.proc.args}"
