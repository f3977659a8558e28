"""The httpx-resilience command: demo, request and chaos, run for real."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from httpx_resilience.cli import main
from httpx_resilience.cli.demo import run_demo_async
from httpx_resilience.testing import ChaosServer


def test_help_runs_as_module_and_script() -> None:
    """`python -m httpx_resilience --help` exits 0 and lists the commands."""
    out = subprocess.run(
        [sys.executable, "-m", "httpx_resilience", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "demo" in out and "request" in out and "chaos" in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command the help is printed and the exit code is 0."""
    assert main([]) == 0
    assert "usage: httpx-resilience" in capsys.readouterr().out


async def test_demo_shows_the_retry_layer_winning() -> None:
    """Against the same faults, httpx-resilience succeeds far more often than plain httpx."""
    plain, ours = await run_demo_async(requests=80, concurrency=10, seed=3)
    assert plain.upstream_requests == 80
    assert ours.success_rate >= 0.9
    assert ours.success_rate > plain.success_rate
    assert ours.upstream_requests > 80
    assert plain.summary()["p50_ms"] >= 0


def test_demo_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --json` prints both clients' figures as JSON and exits 0 when ours wins."""
    assert main(["demo", "-n", "40", "-c", "8", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"plain", "resilient"}
    assert data["resilient"]["success_rate"] >= data["plain"]["success_rate"]
    assert data["resilient"]["requests"] == 40


def test_demo_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo` prints the side-by-side table with success rate, upstream load and latency."""
    assert main(["demo", "-n", "30", "-c", "6", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Same requests, same faults" in out and "httpx-resilience turned" in out


def test_demo_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """Zero requests is refused with exit code 2 and a message."""
    assert main(["demo", "-n", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err


def test_request_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`request GET URL` retries through the pipeline and prints the outcome and body."""
    with ChaosServer() as server:
        server.route("/r", statuses=[503, 200])
        code = main(["request", "GET", server.url_for("/r"), "-H", "X-A: 1", "--timeout", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    outcome = json.loads(out[0])
    assert outcome["status"] == 200 and outcome["attempts"] == 2


def test_request_command_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed header or a bad setting exits 2; a failed request exits 1 with the error."""
    assert main(["request", "GET", "http://127.0.0.1:1/", "-H", "novalue"]) == 2
    assert main(["request", "GET", "http://127.0.0.1:1/", "--timeout", "-1"]) == 2
    assert main(["request", "GET", "http://127.0.0.1:1/", "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert "Name: value" in err and "timeout" in err and "error:" in err


def test_chaos_command_serves_for_a_while(capsys: pytest.CaptureFixture[str]) -> None:
    """`chaos --duration` starts a server, prints its URL and stops by itself."""
    assert main(["chaos", "--duration", "0.1"]) == 0
    assert "ChaosServer listening on http://127.0.0.1:" in capsys.readouterr().out
