"""Private servers a fault test may break at will: a Redis and a PostgreSQL cluster of the test's own.

The Redis on 6379 and the PostgreSQL on 5432 are shared with other engineers and with CI: a fault test
never stops, restarts or reconfigures them. It starts its own on a free port instead, in its own
temporary directory, and stops it at the end whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REDIS_SERVER = "/usr/bin/redis-server"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    pytest.fail(f"{what} did not listen on port {port} in {timeout:.0f} s\n{tail}")


class PrivateRedis:
    """A throw-away ``redis-server``: nothing saved to disk, so a kill loses every message it held."""

    def __init__(self, directory: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            pytest.skip(f"{REDIS_SERVER} is not installed: no private Redis to stop")
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / f"redis-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start (or start again, on the same port and empty) and return once it accepts connections."""
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=10, what="the private redis-server", log=self.log_path)
        return self

    def kill(self) -> None:
        """SIGKILL: the broker is gone at once, with whatever it held."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


class PrivatePostgres:
    """A PostgreSQL 15 cluster in a temporary directory, on a free port and a socket directory of its own.

    ``initdb`` refuses to run as root: as root, every server command runs as the ``postgres`` user,
    which then owns the directory.
    """

    def __init__(self) -> None:
        if not (POSTGRES_BIN / "initdb").exists() or not (POSTGRES_BIN / "pg_ctl").exists():
            pytest.skip(f"initdb/pg_ctl not found in {POSTGRES_BIN}: no private PostgreSQL cluster to restart")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: initdb refuses root")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: that is root's and closed to the postgres user.
        self.directory = Path(tempfile.mkdtemp(prefix="faults-postgres-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.log_path = self.directory / "postgres.log"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*self.as_user, *command], capture_output=True, text=True, timeout=timeout, check=False, cwd=self.directory
        )
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}")
        return result

    def start(self) -> PrivatePostgres:
        """initdb (no fsync: only the server is restarted here, never the machine) and start; wait for it."""
        if self.as_user:
            shutil.chown(self.directory, user="postgres")
        self._run(
            str(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *options: str) -> None:
        server_options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-o", server_options, "-l", str(self.log_path),
            "-w", "-t", "60", action, *options,
        )  # fmt: skip

    def restart(self, *, mode: str = "immediate") -> None:
        """``pg_ctl restart -m immediate``: every backend is cut off as in a crash; recovery replays the WAL."""
        self._pg_ctl("restart", "-m", mode)

    def stop(self) -> None:
        """Stop the server and remove the cluster."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self.as_user, str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, characters: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-characters:] if self.log_path.exists() else ""
