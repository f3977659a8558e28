"""The demo report as a person sees it: rendered by headless Chromium, every chart drawn.

Chromium comes from Debian's ``chromium`` package. Without it the test skips
and says so; where the CI script installed it (it sets
``HTTPX_RESILIENCE_REQUIRE_CHROMIUM=1``), a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from httpx_resilience.cli._demo_run import SCENARIOS, run
from httpx_resilience.cli._report import CHARTS, write_report


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    reason = "headless Chromium is not installed (apt-get install chromium)"
    if os.environ.get("HTTPX_RESILIENCE_REQUIRE_CHROMIUM") == "1":
        pytest.fail(reason + ", but the CI script installed it")
    pytest.skip(reason)


def render(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args,
         page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )


@pytest.mark.parametrize("scenario", ["outage", "rate-limited"])
def test_every_chart_draws_in_a_real_browser(tmp_path: Path, scenario: str) -> None:
    """After load, the page's own check finds visible marks in all six charts; a screenshot is made."""
    browser = chromium()
    result = asyncio.run(run(SCENARIOS[scenario], requests=90, concurrency=10, seed=2, duration=1.5))
    page = write_report(result, tmp_path / "demo.html")
    dom = render(browser, page, "--virtual-time-budget=5000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    drawn = re.search(r'<body[^>]*data-charts="([^"]+)"', dom.stdout)
    assert drawn is not None, "the page's check never ran"
    assert drawn.group(1) == f"{len(CHARTS)}/{len(CHARTS)}"
    shot = tmp_path / "demo.png"
    done = render(browser, page, "--window-size=1400,1500", f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB
