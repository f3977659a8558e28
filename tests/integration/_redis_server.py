"""A test's own ``redis-server``: started on a free loopback port, killed by its PID.

The tests that take Redis away mid-run cannot use the machine's shared Redis
(other tests and helpers rely on it), so they start their own::

    with RedisServer() as server:
        url = server.url          # redis://127.0.0.1:PORT/0
        server.kill()             # SIGKILL, as a crash: no shutdown, no save
        server.start()            # the same port again, empty
        server.freeze()           # SIGSTOP: a hung Redis (connections open, no answer)
        server.thaw()             # SIGCONT

    with RedisClusterNodes() as cluster:  # three masters, slots assigned
        url = cluster.url

The server keeps nothing on disk (``--save '' --appendonly no``, its working
directory a temporary one) and binds loopback only. :func:`started_server`
(the body of the ``own_redis`` fixture) yields a started server and always
stops it; without ``redis-server`` on the machine it skips, except under
``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
_START_TIMEOUT = 10.0  # seconds for a fresh server to answer PING


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:port answers PING (raw RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process of the test's own, on a fixed loopback port.

    Args:
        port: the port; a free one by default. It stays the same across
            :meth:`kill` and :meth:`start`, so clients reconnect to the new server.
        extra: more ``redis-server`` arguments (``("--cluster-enabled", "yes")``).
    """

    def __init__(self, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.port = port if port is not None else free_port()
        self.extra = extra  # more redis-server arguments
        self._dir = tempfile.mkdtemp(prefix="httpx-resilience-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of database 0 on this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The PID of the running server, or None."""
        return self._proc.pid if self.running else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> RedisServer:
        """Start the server (a no-op when running) and wait until it answers PING.

        Raises:
            RuntimeError: the server exited or did not answer within 10 s; the
                message carries its log.
        """
        if self.running:
            return self
        log = Path(self._dir) / "redis.log"
        argv = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir,
            "--logfile", str(log),
            "--daemonize", "no",
            *self.extra,
        ]  # fmt: skip
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if _answers_ping(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        text = log.read_text(errors="replace") if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server on port {self.port} did not start:\n{text[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server by its PID (a crash: clients see the connection drop)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=5)

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open and nothing answers (a hung Redis)."""
        if self.running:
            assert self._proc is not None
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server: it answers again, what it queued included."""
        if self.running:
            assert self._proc is not None
            os.kill(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); idempotent."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.thaw()  # a frozen process would not act on SIGTERM
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._proc = None

    def close(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def _free_cluster_port(start: int) -> int:
    """A port from `start` up, free on loopback together with its cluster bus port (+10000)."""
    for port in range(start, 55535):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisClusterNodes:
    """A Redis Cluster of the test's own: three masters on loopback, no replicas.

    Each node is a :class:`RedisServer` started with ``--cluster-enabled yes``;
    ``redis-cli --cluster create`` assigns the 16384 slots. A cluster node
    also listens on its port + 10000 (the cluster bus), so the ports are
    picked below 55535 with both free.
    """

    def __init__(self, nodes: int = 3) -> None:
        self.servers: list[RedisServer] = []
        port = 30000
        for _ in range(nodes):
            port = _free_cluster_port(port)
            self.servers.append(RedisServer(port, extra=("--cluster-enabled", "yes")))
            port += 1

    @property
    def url(self) -> str:
        """The URL of the first node (a cluster client discovers the others)."""
        return f"redis://127.0.0.1:{self.servers[0].port}/0"

    def start(self) -> RedisClusterNodes:
        """Start the nodes, join them, and wait until the cluster says ``cluster_state:ok``."""
        for server in self.servers:
            server.start()
        addresses = [f"127.0.0.1:{s.port}" for s in self.servers]
        create = [REDIS_CLI, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=30)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            info = subprocess.run(
                [REDIS_CLI, "-p", str(self.servers[0].port), "cluster", "info"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
            if "cluster_state:ok" in info.stdout:
                return self
            time.sleep(0.05)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok within 10 s")

    def close(self) -> None:
        """Stop every node and remove their working directories."""
        for server in self.servers:
            server.close()

    def __enter__(self) -> RedisClusterNodes:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def started_cluster() -> Iterator[RedisClusterNodes]:
    """Yield a started three-node Redis Cluster and stop it afterwards (a fixture's body).

    Skips without ``redis-server`` or ``redis-cli``, except under ``CI=true``.
    """
    missing = [p for p in (REDIS_SERVER, REDIS_CLI) if not Path(p).exists()]
    if missing:
        reason = f"{', '.join(missing)} not installed; install redis-server and redis-tools"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the Redis tests must run)")
        pytest.skip(reason)
    with RedisClusterNodes() as cluster:
        yield cluster


def started_server() -> Iterator[RedisServer]:
    """Yield a started server and close it afterwards (the body of a fixture).

    Skips without ``redis-server`` on the machine, except under ``CI=true``.
    """
    if not Path(REDIS_SERVER).exists():
        reason = f"redis-server is not installed (looked for {REDIS_SERVER}); install redis-server"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true: the Redis tests must run)")
        pytest.skip(reason)
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A started ``redis-server`` of this test's own; stopped afterwards."""
    yield from started_server()
