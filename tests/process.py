"""Run real ``seventweets`` processes for tests: start, wait for ready, signal, collect."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any, ClassVar

READY = re.compile(r"ready name=(\S+) address=(\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NodeProcess:
    """A ``python -m seventweets`` child process whose standard error is collected."""

    # Every process started and not yet reaped; the suite kills leftovers after each test.
    running: ClassVar[list[NodeProcess]] = []

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.lines: list[str] = []
        self.address: str | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seventweets", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        NodeProcess.running.append(self)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            match = READY.search(line)
            if match:
                self.address = match.group(2)
                self._ready.set()

    def wait_ready(self, timeout: float = 30) -> str:
        """Wait for the ready line and return the node's address."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2)
                raise AssertionError(
                    f"node did not become ready; exit={self.process.poll()} "
                    f"stderr:\n" + "\n".join(self.lines)
                )
        assert self.address is not None
        return self.address

    def wait_exit(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()
        if self in NodeProcess.running:
            NodeProcess.running.remove(self)
        return code

    def terminate(self) -> int:
        """Send SIGTERM and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def kill(self) -> None:
        """Send SIGKILL unless the process has exited, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait_exit()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], Any]:
    """Send one request and return (status, headers, decoded JSON body or None)."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status, response_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        status, response_headers = error.code, dict(error.headers)
    decoded = (
        json.loads(raw)
        if raw and "json" in response_headers.get("Content-Type", "")
        else None
    )
    return status, response_headers, decoded
