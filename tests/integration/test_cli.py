"""The httpx-resilience command: demo, request and chaos, run for real."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from httpx_resilience.cli import main
from httpx_resilience.cli._demo_run import SCENARIOS, run
from httpx_resilience.cli._report import CHARTS, render_report
from httpx_resilience.cli.demo import verdict
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
    result = await run(SCENARIOS["mixed"], requests=80, concurrency=10, seed=3, duration=1.0)
    plain, ours = result.plain, result.ours
    assert plain.upstream == plain.requests == 80
    assert ours.success_rate >= 0.85
    assert ours.success_rate > plain.success_rate
    assert ours.upstream > 80  # retries
    assert plain.duplicates == ours.duplicates == 0
    assert verdict(result)[0]


@pytest.mark.parametrize("name", ["outage", "rate-limited", "slow-tail", "flaky"])
async def test_each_scenario_shows_its_policy(name: str) -> None:
    """Each scenario's claim holds: the verdict the demo's exit code is made of."""
    result = await run(SCENARIOS[name], requests=120, concurrency=20, seed=11, duration=2.0)
    ok, text = verdict(result)
    assert ok, text
    if name == "outage":
        assert result.ours.breaker, "the breaker never moved"
        assert result.ours.upstream < result.plain.upstream
        assert result.ours.served_by_fallback > 0  # GETs the open breaker refused got a stale copy
        assert all(r.method == "GET" for r in result.ours.records if r.outcome == "served by the fallback")
    if name == "rate-limited":
        assert result.ours.limiter_waits, "the limiter never made anyone wait"
        assert "HTTP 429" in result.plain.failures()
        assert "HTTP 429" not in result.ours.failures()


def test_the_report_names_every_chart_and_the_run() -> None:
    """The page holds the six charts (each with drawn marks), the scenario and the seed."""
    result = asyncio.run(
        run(SCENARIOS["outage"], requests=60, concurrency=10, seed=5, duration=1.0)
    )
    page = render_report(result)
    for chart in CHARTS:
        section = page.split(f'data-chart="{chart}"', 1)[1].split("</svg>", 1)[0]
        assert 'class="mark"' in section, chart
    assert "--scenario outage" in page and "--seed 5" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_demo_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`demo --json` prints both clients' figures and the report's path, and exits 0 when ours wins."""
    report = tmp_path / "out" / "demo.html"
    assert main(["demo", "-n", "40", "-c", "8", "--json", "--report", str(report)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"plain", "resilient", "scenario", "verdict", "report"} <= set(data)
    assert data["resilient"]["success_rate"] >= data["plain"]["success_rate"]
    assert data["resilient"]["requests"] == 40
    assert data["report"] == str(report.resolve()) and report.read_text().startswith("<!doctype")


def test_demo_table_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`demo` prints the side-by-side table, the verdict and where the report went."""
    report = tmp_path / "r.html"
    assert main(["demo", "-n", "30", "-c", "6", "--no-progress", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "Same requests, same faults" in out and "httpx-resilience turned" in out
    assert "Report:" in out and report.exists()


def test_demo_without_report(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no-report` writes nothing."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "-n", "20", "--no-progress", "--no-report"]) == 0
    assert "Report:" not in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_demo_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """Zero requests is refused with exit code 2 and a message; so is an unknown scenario."""
    assert main(["demo", "-n", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--scenario", "nope"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_request_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`request GET URL --format json` retries through the pipeline and prints the outcome and body."""
    with ChaosServer() as server:
        server.route("/r", statuses=[503, 200])
        code = main(["request", "GET", server.url_for("/r"), "-H", "X-A: 1", "--timeout", "2",
                     "--format", "json"])
        sent = server.requests("/r")
    outcome = json.loads(capsys.readouterr().out.splitlines()[0])
    assert code == 0
    assert outcome["status"] == 200 and outcome["attempts"] == 2
    assert all(r.headers["x-a"] == "1" for r in sent)


def test_request_command_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed header or a bad setting exits 2; a request without a response exits 3."""
    assert main(["request", "GET", "http://127.0.0.1:1/", "-H", "novalue"]) == 2
    assert main(["request", "GET", "http://127.0.0.1:1/", "--timeout", "-1"]) == 2
    assert main(["request", "GET", "http://127.0.0.1:1/", "--retries", "0"]) == 3
    err = capsys.readouterr().err
    assert "Name: value" in err and "timeout" in err and "error: ConnectError" in err


def test_chaos_command_serves_for_a_while(capsys: pytest.CaptureFixture[str]) -> None:
    """`chaos --duration` starts a server, prints its URL and stops by itself."""
    assert main(["chaos", "--duration", "0.1"]) == 0
    assert "ChaosServer listening on http://127.0.0.1:" in capsys.readouterr().out
