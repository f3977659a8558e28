"""Shared benchmark plumbing: a pinned nginx on 127.0.0.1 (installed with apt-get when
missing and we are root), stopped by its PID, or the ChaosServer in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BODY = '{"ok":true,"items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'


def find_nginx(install: bool = True) -> str | None:
    """The nginx binary; installed with apt-get when missing and we may (root)."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing nginx with apt-get ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx"], check=False, capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int) -> list[str]:
    return ["taskset", "-c", str(core)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


class Server:
    """nginx on 127.0.0.1 (stopped by its PID), or the ChaosServer in a subprocess as a fallback."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="speed-bench-nginx-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.kind = ""

    def start(self) -> None:
        nginx = find_nginx()
        if nginx:
            conf = self.dir / "nginx.conf"
            temp = {name: self.dir / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
            conf.write_text(
                f"""worker_processes 1;
daemon off;
master_process off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 75;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  server {{
    listen 127.0.0.1:{self.port} backlog=4096;
    location / {{ default_type application/json; return 200 '{BODY}'; }}
  }}
}}
"""
            )
            self.proc = subprocess.Popen([*pin(1), nginx, "-p", str(self.dir), "-c", str(conf)])
            version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
            self.kind = f"nginx ({version}), 1 worker"
        else:
            code = (
                "from httpx_resilience.testing import ChaosServer;import time;"
                f"s=ChaosServer(port={self.port}, max_records=0).start();s.route('/', body={BODY!r});time.sleep(1e9)"
            )
            self.proc = subprocess.Popen([*pin(1), sys.executable, "-c", code])
            self.kind = "ChaosServer subprocess (nginx unavailable)"
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"benchmark server did not start ({self.kind})")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)




def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
