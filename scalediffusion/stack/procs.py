"""Starting, checking and stopping the local stack's processes. Each runs in its own process group with its
output in <state>/logs/<name>.log; stopping only ever signals a pid whose command line is still the one we started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A stack operation failed; the message says what to do."""


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot); set at fork, so it survives exec and tells pid reuse apart."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


@dataclass
class ProcRecord:
    name: str
    pid: int
    cmd: list[str]
    log: str
    start_ticks: int = 0

    def alive(self) -> bool:
        """True while this exact process runs: same pid and start time (guards against pid reuse), not a zombie."""
        fields = _proc_stat(self.pid)
        if fields is None or fields[0] == "Z":
            return False
        return int(fields[19]) == self.start_ticks

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def spawn(name: str, cmd: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path | None = None) -> ProcRecord:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd
        )
    return ProcRecord(name=name, pid=proc.pid, cmd=cmd, log=str(log_path), start_ticks=process_start_ticks(proc.pid) or 0)


def terminate(record: ProcRecord, grace_s: float) -> bool:
    """SIGTERM, wait up to grace_s, then SIGKILL. Returns True when the process had to be killed."""
    if not record.alive():
        return False
    try:
        os.killpg(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not record.alive():
            return False
        _reap(record.pid)
        time.sleep(0.1)
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(check, timeout_s: float, what: str, record: ProcRecord | None = None, interval_s: float = 0.2) -> None:
    """Polls check() until it returns truthy; raises StackError naming `what` (with the log tail) on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if record is not None and not record.alive():
            raise StackError(f"{what}: process exited during start-up. Last log lines ({record.log}):\n{record.log_tail()}")
        try:
            if check():
                return
        except Exception as err:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = err
        time.sleep(interval_s)
    tail = f"\nLast log lines ({record.log}):\n{record.log_tail()}" if record else ""
    raise StackError(f"{what} was not ready after {timeout_s:.0f} s (last error: {last_error!r}){tail}")
