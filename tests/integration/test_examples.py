"""Every script in examples/ runs to completion (each asserts its own outcome)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def test_examples_exist() -> None:
    """The examples folder holds every script seed 001 lists, and the documented others."""
    names = {p.name for p in EXAMPLES}
    seed_001 = {"basic_usage.py", "with_auth.py", "with_retry.py", "with_rate_limiting.py", "with_circuit_breaker.py"}
    assert seed_001 <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    """The example exits 0 (its own assertions hold) within a minute."""
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
