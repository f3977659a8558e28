"""The CLI's tools, run for real: the resilient curl, chaos serve with a profile, the quick bench."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from httpx_resilience.cli import main
from httpx_resilience.testing import ChaosServer


def test_request_prints_the_body_to_stdout_and_the_timeline_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each attempt, its failure and the wait (with Retry-After) are on stderr; the body on stdout."""
    with ChaosServer() as server:
        server.route("/r", statuses=[503, 200], retry_after=1)
        code = main(["request", "GET", server.url_for("/r"), "-i"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "attempt 1" in err and "✗ HTTP 503" in err and "Retry-After 1 s" in err
    assert "attempt 2" in err and "← 200 OK after 2 attempt(s)" in err
    assert "content-type: application/json" in out and '"ok":true' in out


def test_request_json_format_and_bodies(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--format json prints one object per request; --json and --data @FILE send their bodies."""
    body = tmp_path / "body.txt"
    body.write_text("raw bytes")
    with ChaosServer() as server:
        assert main(["request", "POST", server.url_for("/j"), "--json", '{"a": 1}', "--format", "json"]) == 0
        assert main(["request", "PUT", server.url_for("/d"), "--data", f"@{body}", "--format", "json"]) == 0
        sent_json = server.requests("/j")[0]
        sent_data = server.requests("/d")[0]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["status"] for o in lines] == [200, 200]
    assert lines[0]["timeline"][0]["event"] == "attempt"
    assert json.loads(sent_json.body) == {"a": 1}
    assert sent_json.headers["content-type"] == "application/json"
    assert sent_data.body == b"raw bytes"


def test_request_auth_reads_secrets_from_env_and_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bearer:env:VAR, basic:USER:@FILE, apikey:NAME=KEY and apikey-query put the credential where asked."""
    monkeypatch.setenv("DEMO_TOKEN", "tok-from-env")
    secret = tmp_path / "pw"
    secret.write_text("pw-from-file\n")
    with ChaosServer() as server:
        url = server.url_for("/a")
        for auth in ("bearer:env:DEMO_TOKEN", f"basic:alice:@{secret}", "apikey:X-Key=k1", "apikey-query:key=k2"):
            assert main(["request", "GET", url, "--auth", auth, "-q"]) == 0
        seen = server.requests("/a")
    assert seen[0].headers["authorization"] == "Bearer tok-from-env"
    assert seen[1].headers["authorization"].startswith("Basic ")
    import base64

    assert base64.b64decode(seen[1].headers["authorization"][6:]) == b"alice:pw-from-file"
    assert seen[2].headers["x-key"] == "k1"
    assert seen[3].query == "key=k2"
    assert "tok-from-env" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--auth", "bearer:env:NOPE_NOT_SET"], "NOPE_NOT_SET"),
        (["--auth", "magic:x"], "unknown kind"),
        (["--auth", "basic:only-user"], "basic:USER:PASSWORD"),
        (["--json", "{nope"], "not valid JSON"),
        (["--data", "@/nonexistent/file"], "cannot read"),
        (["--breaker", "x/y"], "N/SECONDS"),
        (["--repeat", "0"], "--repeat"),
        (["-H", "novalue"], "Name: value"),
        (["--timeout", "-1"], "timeout"),
    ],
)
def test_request_usage_errors_exit_2_and_name_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A bad option exits 2 before anything is sent, and the message names what to fix."""
    assert main(["request", "GET", "http://127.0.0.1:1/", *argv]) == 2
    assert message in capsys.readouterr().err


def test_request_exit_codes_and_the_breaker(capsys: pytest.CaptureFixture[str]) -> None:
    """A final 4xx/5xx exits 1; no response exits 3; --breaker 1/30 refuses the repeats at once."""
    with ChaosServer() as server:
        server.route("/missing", status=404)
        assert main(["request", "GET", server.url_for("/missing"), "-q"]) == 1
    start = time.perf_counter()
    code = main(["request", "GET", "http://127.0.0.1:1/", "--retries", "0", "--breaker", "1/30",
                 "--repeat", "3"])
    assert code == 3
    err = capsys.readouterr().err
    assert err.count("CircuitBreakerOpenError") >= 2 and "ConnectError" in err
    assert time.perf_counter() - start < 10


def test_request_rate_paces_repeats(capsys: pytest.CaptureFixture[str]) -> None:
    """--rate 20 --repeat 6 spaces the requests by the limiter: about a quarter of a second in all."""
    with ChaosServer() as server:
        assert main(["request", "GET", server.url_for("/p"), "--rate", "20", "--repeat", "6", "-q"]) == 0
        times = [r.at for r in server.requests("/p")]
    assert len(times) == 6
    assert times[-1] - times[0] >= 0.2  # 5 gaps of 50 ms
    capsys.readouterr()


def _serve_in_thread(argv: list[str]) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    thread.start()
    return thread, codes


def _port_from(capsys: pytest.CaptureFixture[str]) -> int:
    for _ in range(100):
        out = capsys.readouterr().out
        if "listening on" in out:
            return int(out.split("listening on http://127.0.0.1:", 1)[1].split()[0])
        time.sleep(0.05)
    raise AssertionError("chaos serve never said where it listens")


def test_chaos_serve_with_a_profile(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The profile's routes answer as written, and the totals are printed at the end."""
    profile = tmp_path / "chaos.toml"
    profile.write_text(
        '[[routes]]\npath = "/orders"\nstatuses = [503, 200]\n\n'
        '[[routes]]\npath = "/teapot"\nstatus = 418\nheaders = { x-from = "profile" }\n\n'
        '[[routes]]\npath = "/steps"\nsteps = [{ status = 502 }, { status = 201 }]\n'
    )
    thread, codes = _serve_in_thread(["chaos", "serve", "--profile", str(profile), "--duration", "1.5", "--no-live"])
    port = _port_from(capsys)
    base = f"http://127.0.0.1:{port}"
    statuses = [httpx.get(base + p).status_code for p in ("/orders", "/orders", "/teapot", "/steps", "/steps")]
    teapot = httpx.get(base + "/teapot")
    thread.join(10)
    assert statuses == [503, 200, 418, 502, 201]
    assert teapot.headers["x-from"] == "profile"
    assert codes == [0]
    assert "served 6 requests" in capsys.readouterr().out


def test_chaos_serve_live_counters(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """With the live view on, the per-route table shows the counts."""
    profile = tmp_path / "p.toml"
    profile.write_text('[[routes]]\npath = "/live"\n')
    thread, codes = _serve_in_thread(["chaos", "serve", "--profile", str(profile), "--duration", "1.0"])
    port = _port_from(capsys)
    for _ in range(3):
        httpx.get(f"http://127.0.0.1:{port}/live")
    thread.join(10)
    out = capsys.readouterr().out
    assert codes == [0] and "/live" in out and "served 3 requests" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[routes]]\npath = "/x"\nstatuss = [1]\n', "unknown key(s) ['statuss']"),
        ('[[routes]]\npath = "x"\n', "must start with '/'"),
        ('[[routes]]\npath = "/x"\nmix = { error_503 = 2 }\n', "within 0..1"),
        ('[[routes]]\npath = "/x"\nmix = { nope = 1 }\n', "routes[0] (/x).mix"),
        ('[[routes]]\npath = "/x"\nsteps = [{ stat = 1 }]\n', "steps[0]"),
        ("port = 99999\n[[routes]]\npath = '/x'\n", "port must be"),
        ("x = [\n", "not valid TOML"),
        ("title = 'no routes'\n", "unknown key(s) ['title']"),
        ("", "no [[routes]]"),
    ],
)
def test_chaos_profile_errors_name_the_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    """A wrong profile exits 2 without serving, and says which route and key is wrong."""
    profile = tmp_path / "bad.toml"
    profile.write_text(text)
    assert main(["chaos", "serve", "--profile", str(profile)]) == 2
    assert message in capsys.readouterr().err


def test_bench_prints_ratios_and_writes_plots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A tiny run prints every client at every concurrency with its ratio, and two PNGs."""
    code = main(["bench", "-n", "40", "--rounds", "1", "-c", "1", "-c", "4", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line for line in out.splitlines() if "×" in line and "client" not in line]
    assert len(rows) == 6
    assert all(row.split()[-1].endswith("×") for row in rows)
    for name in ("bench-throughput.png", "bench-cpu.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5_000


def test_bench_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    """Zero requests is refused before the server starts."""
    assert main(["bench", "-n", "0"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
