"""The real ASGI host in a subprocess on a free port, started as ``make run`` starts it (``python -m server``).

``start_host`` returns once ``/healthz`` answers 200 (it polls; it never sleeps a fixed time)
and fails with the server's log when the process exits or does not come up in time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60.0


@dataclass
class Answer:
    """One HTTP response: status, headers, body."""

    status: int
    headers: Message
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Host:
    """A running host and where it writes its log."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log_file: Any = field(repr=False)

    def get(self, path: str, *, timeout: float = 10.0) -> Answer:
        """GET ``path``; an HTTP error status is an answer too, not an exception."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, error.headers, error.read())

    def log(self) -> str:
        """What the server has written to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ask uvicorn to shut down (lifespan shutdown runs); kill it if it does not within 15 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_host(env: dict[str, str], log_path: Path, *, cwd: Path = ROOT) -> Host:
    """Start ``python -m server`` (uvicorn serving server:app) with ``env`` added; wait for /healthz.

    ``cwd`` may be any directory: the repository is put on ``PYTHONPATH``.
    """
    port = free_port()
    command = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)]
    log_file = log_path.open("wb")
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "PYTHONPATH": python_path},
                               stdout=log_file, stderr=subprocess.STDOUT)
    host = Host(process, f"http://127.0.0.1:{port}", log_path, log_file)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            host.stop()
            raise RuntimeError(f"the host exited with {process.returncode}:\n{host.log()}")
        try:
            if host.get("/healthz", timeout=2).status == 200:
                return host
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)  # poll again
    host.stop()
    raise RuntimeError(f"the host did not answer /healthz within {STARTUP_SECONDS:g} s:\n{host.log()}")
