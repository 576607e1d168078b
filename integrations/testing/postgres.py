"""A throwaway PostgreSQL cluster on loopback for tests and the bench (Debian's packaged server).

initdb refuses to run as root, so as root the server runs as the `postgres` user (`runuser`) in a
directory that user owns; it listens on 127.0.0.1 at a free port with its socket in that directory,
without fsync (the data is thrown away). Each test takes a fresh database from it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PACKAGES = Path("/usr/lib/postgresql")


def server_bin() -> Path | None:
    """The newest installed server's bin directory, if any."""
    found = sorted((p for p in PACKAGES.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self, bindir: Path | None = None, fsync: bool = False) -> None:
        found = bindir or server_bin()
        if found is None:
            raise FileNotFoundError(f"no PostgreSQL server under {PACKAGES} (apt-get install postgresql)")
        self.bindir = found
        self.root = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        self._names = itertools.count(1)
        self.fsync = fsync  # on for measurements that compare with SQLite's synced commits
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresCluster:
        if not self.data.exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions")
        durability = "" if self.fsync else "-c fsync=off -c full_page_writes=off "
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} {durability}-c max_connections=200"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                  "-t", "60", "-o", options, "start")
        return self

    def restart(self, mode: str = "immediate") -> None:
        """Stop (`immediate` is a crash: no checkpoint) and start again on the same port."""
        self.halt(mode)
        self.start()

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server and keep its data: `start()` brings it back on the same port."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of a `PostgresCluster` (Debian's `pgbouncer`): each
    transaction may run on a different server connection, so nothing may rely on session state."""

    BINARY = "/usr/sbin/pgbouncer"

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster
        self.port = _free_port()
        self.dir = cluster.root / f"pgbouncer-{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PgBouncer:
        self.dir.mkdir()
        (self.dir / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
        ini = self.dir / "pgbouncer.ini"
        ini.write_text("\n".join([
            "[databases]", f"* = host=127.0.0.1 port={self.cluster.port}", "[pgbouncer]",
            "listen_addr = 127.0.0.1", f"listen_port = {self.port}", "unix_socket_dir =",
            "auth_type = trust", f"auth_file = {self.dir / 'users.txt'}", "pool_mode = transaction",
            "default_pool_size = 4", "max_client_conn = 200", "ignore_startup_parameters = extra_float_digits",
            f"logfile = {self.dir / 'log'}", ""]), encoding="utf-8")
        if self.cluster._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"] if self.cluster._as_postgres else []
        self.process = subprocess.Popen([*prefix, self.BINARY, str(ini)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"pgbouncer did not start: {self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.dir / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
