"""A real PostgreSQL server for tests: initdb in a temporary folder, loopback only, stopped by pid.

Debian's ``postgresql`` package (``make test`` installs it when missing, as it does chromium).
The server runs as an unprivileged user: ``postgres`` when the tests run as root (PostgreSQL
refuses to run as root), the current user otherwise. It listens on 127.0.0.1 on a free port
with ``trust`` authentication and its socket in its own folder, so nothing outside the test
can reach it. Tests of the multi-machine backend never skip: a missing server is an error.

    with PostgresServer(tmp_dir) as pg:
        dsn = pg.create_database("lake")   # libpq keyword string for that database
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


class PostgresUnavailable(RuntimeError):
    pass


def pg_bin(name: str) -> str:
    for d in PG_BIN_DIRS:
        if (d / name).is_file():
            return str(d / name)
    found = shutil.which(name)
    if found:
        return found
    raise PostgresUnavailable(
        f"PostgreSQL's {name} not found (looked in {', '.join(map(str, PG_BIN_DIRS))} and PATH); "
        "install Debian's `postgresql` package (`make test` does this itself when it runs as root)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, root: str | Path, user: str = "postgres"):
        self.root = Path(root)
        self.data_dir = self.root / "pgdata"
        self.user = user  # the database superuser name
        self.host = "127.0.0.1"
        self.port = free_port()
        self.pid: int | None = None
        self._run_as = "postgres" if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ process control

    def _cmd(self, args: list[str]) -> list[str]:
        if self._run_as:
            return ["runuser", "-u", self._run_as, "--", *args]
        return args

    def _chown(self, path: Path) -> None:
        if self._run_as:
            pw = pwd.getpwnam(self._run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        parent = self.root
        if self._run_as:  # the server user must be able to traverse to its folder
            while parent != parent.parent:
                parent = parent.parent
                if parent.stat().st_mode & 0o001 == 0 and str(parent).startswith(("/tmp", "/var/tmp")):
                    parent.chmod(parent.stat().st_mode | 0o001)
        self.data_dir.mkdir()
        self._chown(self.data_dir)
        subprocess.run(self._cmd([pg_bin("initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", self.user,
                                  "-E", "UTF8", "--no-instructions"]),
                       check=True, capture_output=True, timeout=120)
        log = self.data_dir / "server.log"
        opts = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(self._cmd([pg_bin("pg_ctl"), "-D", str(self.data_dir), "-o", opts, "-l", str(log), "-w",
                                  "-t", "60", "start"]),
                       check=True, capture_output=True, timeout=120)
        pidfile = self.data_dir / "postmaster.pid"
        self.pid = int(pidfile.read_text().splitlines()[0])
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise PostgresUnavailable(f"PostgreSQL did not accept connections on {self.host}:{self.port}")

    def stop(self) -> None:
        """Fast shutdown by pid (SIGINT), then SIGKILL if it lingers."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ connection strings

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq keyword string (what DuckDB's postgres/ducklake extensions take)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        p = subprocess.run([pg_bin("psql"), "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", dbname,
                            "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                           capture_output=True, text=True, timeout=60, check=False)
        if p.returncode:
            raise RuntimeError(f"psql failed: {p.stderr.strip()}")
        return p.stdout

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)
