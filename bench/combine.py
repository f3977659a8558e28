"""Gather the per-script reports (``bench/RESULTS_*.md``) into ``bench/RESULTS.md``.

The summary at the top is ``bench/SUMMARY.md`` (written by hand from the figures of
the same run); each script's report follows as a numbered section, its own title
replaced and its headings moved one level down. Run after ``make bench``::

    python bench/combine.py
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = (
    ("RESULTS_pipeline.md", "Retry pipeline vs raw httpx, tenacity and httpx-retries (`bench/run.py`)"),
    ("RESULTS_speed.md", "Speed: inner transports and the lean client (`bench/speed_bench.py`)"),
    ("RESULTS_instructions.md", "Instructions per request, without the timing noise (`bench/instructions_bench.py`)"),
    ("RESULTS_profile.md", "Where the CPU time goes: profiles at c=1 and c=64 (`bench/profile_bench.py`)"),
    ("RESULTS_policies.md", "Policies (`bench/policies_bench.py`)"),
    ("RESULTS_observe.md", "Observers (`bench/observe_bench.py`)"),
    ("RESULTS_overhead.md", "The pipeline's cost as users meet it, and where it goes (`bench/overhead_bench.py`)"),
    ("RESULTS_soak.md", "Soak: 100,000 requests per transport against every fault (`bench/soak.py`)"),
    ("RESULTS_aiohttp.md", "Our AiohttpTransport vs httpx-aiohttp (`bench/aiohttp_compare.py`)"),
    ("RESULTS_redis.md", "Shared state on Redis vs limits and pyrate-limiter (`bench/redis_bench.py`)"),
    ("RESULTS_throttle.md", "Adaptive throttling during an outage (`bench/throttle_bench.py`)"),
    ("RESULTS_sync.md", "Sync: httpx.Client, requests + urllib3 Retry (`bench/sync_bench.py`)"),
)


def section(number: int, title: str, text: str) -> str:
    lines = text.strip().splitlines()
    level = 1
    if lines and (m := re.match(r"^(#+) ", lines[0])):
        level = len(m.group(1))
        lines = lines[1:]  # the script's own title
    shift = 2 - level  # the script's subsections become ### here

    def demote(line: str) -> str:
        m = re.match(r"^(#+) ", line)
        return "#" * (len(m.group(1)) + shift) + line[len(m.group(1)):] if m else line

    body = [demote(line) for line in lines]
    return f"## {number}. {title}\n\n" + "\n".join(body).strip() + "\n"


def main() -> None:
    parts = [(HERE / "SUMMARY.md").read_text().strip() + "\n"]
    for number, (name, title) in enumerate(SECTIONS, start=1):
        path = HERE / name
        if path.exists():
            parts.append(section(number, title, path.read_text()))
    (HERE / "RESULTS.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
