"""Starting, waiting on and stopping the processes of a local run (``make e2e``, ``make cluster``).

Each process starts in its own session, so stopping it (or killing it, as a fault) reaches the
children it forked too; nothing is ever stopped by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import IO, Any

STOP_TIMEOUT = 30.0


class StepError(Exception):
    """A step failed; the message says which and why."""


class ProcessGroups:
    """The processes started here, each in its own session (process group), stopped together."""

    def __init__(self) -> None:
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(
        self,
        name: str,
        command: list[str],
        *,
        env: Mapping[str, str],
        stdout: int | IO[bytes],
        cwd: Path,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``command`` in a session of its own, as ``user`` when given (root only)."""
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed commands
                command,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT if stdout is not subprocess.PIPE else None,
                start_new_session=True,  # its own process group: stop_all() reaches its children too
                user=user,
            )
        except OSError as error:
            raise StepError(f"cannot start {name}: {error}") from None
        self._started.append((name, process))
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL ``process`` and every process of its group at once, as when its machine dies."""
        signal_group(process, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)

    def stop(self, process: subprocess.Popen[bytes], *, name: str = "a process", log: Callable[[str], None]) -> None:
        """SIGTERM to its process group, then SIGKILL to what is left after :data:`STOP_TIMEOUT`."""
        signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop within {STOP_TIMEOUT:.0f} s: killing its process group")
        # Children (scheduler, workers, ...) may outlive the leader: the whole group goes.
        signal_group(process, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        self._started = [(known, started) for known, started in self._started if started is not process]

    def stop_all(self, *, log: Callable[[str], None]) -> None:
        """Stop every process started here, the last started first."""
        while self._started:
            name, process = self._started[-1]
            self.stop(process, name=name, log=log)


def signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)  # the group's id is the leader's pid (start_new_session)


def first_line(process: subprocess.Popen[bytes], *, timeout: float, name: str) -> str:
    """The first stdout line of ``process``, within ``timeout``."""
    lines: list[bytes] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].strip():
        raise StepError(f"{name} printed nothing within {timeout:.0f} s (exit code {process.poll()})")
    return lines[0].decode().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_command(
    command: list[str], *, timeout: float, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> None:
    try:
        completed = subprocess.run(  # noqa: S603 - fixed commands
            command, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise StepError(f"`{' '.join(command)}` took more than {timeout:.0f} s") from None
    except OSError as error:
        raise StepError(f"cannot run `{' '.join(command)}`: {error}") from None
    if completed.returncode != 0:
        raise StepError(f"`{' '.join(command)}` failed with exit code {completed.returncode}")


def apt_install(packages: list[str], *, timeout: float) -> None:
    """``apt-get update`` then ``apt-get install`` of Debian ``packages``; needs root."""
    if os.geteuid() != 0:
        raise StepError(
            f"{', '.join(packages)} must be installed and this is not root: run "
            f"`sudo apt-get install -y {' '.join(packages)}`"
        )
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_command(["apt-get", "update", "-q"], env=apt_env, timeout=timeout)
    run_command(["apt-get", "install", "-y", "-q", *packages], env=apt_env, timeout=timeout)


def http_json(
    url: str, *, token: str | None = None, data: bytes | None = None, method: str | None = None
) -> dict[str, Any]:
    """GET (or POST ``data``) on loopback; any failure is a :class:`StepError` naming the URL."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - loopback URL
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StepError(f"{url}: {error}") from None


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StepError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stop_on_sigterm() -> None:
    """SIGTERM (CI cancelling, `timeout`) unwinds like Ctrl-C, so the finally blocks stop what was started."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
