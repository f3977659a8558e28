"""Instructions per request (valgrind callgrind): the speed comparison without the timing noise.

CPU time on a shared 2-core machine moves by 10–40 % from run to run (other
guests, caches, frequency). Instructions executed do not: callgrind counts
them exactly, the same for the same binary and inputs whatever else runs. This
script runs each client of ``bench/speed_bench.py`` (same builds, same nginx
on 127.0.0.1) under callgrind twice, with ``N1`` and ``N2`` measured requests
after the same warm-up, and reports ``(I(N2) - I(N1)) / (N2 - N1)``: the
instructions one more request costs, start-up and warm-up cancelled out.

Instructions are not time (a syscall or a cache miss costs more than an add),
so this complements the CPU table of ``RESULTS_speed.md``; it is what settles a
ratio such as "ResilientTransport adds ≤ 5 %" when the timings disagree.

Writes ``bench/RESULTS_instructions.md``. Usage::

    python bench/instructions_bench.py [--small 200] [--large 600]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _nginx import Server  # noqa: E402
from speed_bench import label, machine  # noqa: E402

# (variant, concurrency): httpx's own pool at c=64 runs ~100x slower under callgrind,
# so plain httpx and the pipeline over it are counted at c=1 only.
RUNS = (
    ("aiohttp", 1), ("httpx", 1), ("httpx_native", 1), ("resilient", 1), ("resilient_native", 1),
    ("client_native", 1), ("client_full", 1),
    ("aiohttp", 64), ("httpx_native", 64), ("resilient_native", 64), ("client_native", 64),
    ("client_full", 64),
)
PAIRS = (
    ("resilient_native", "httpx_native", "ResilientTransport over NativeTransport vs the bare NativeTransport, both under httpx.AsyncClient"),
    ("resilient", "httpx", "ResilientTransport over httpx's transport vs plain httpx.AsyncClient"),
    ("client_native", "aiohttp", "AsyncHTTPClient (every policy) over NativeTransport vs plain aiohttp"),
    ("client_native", "httpx", "AsyncHTTPClient (every policy) over NativeTransport vs plain httpx"),
    ("client_full", "aiohttp", "AsyncHTTPClient (every policy) over AiohttpTransport vs plain aiohttp"),
)


def instructions(variant: str, url: str, requests: int, concurrency: int, warmup: int) -> int:
    """Instructions callgrind counts for one client process of ``speed_bench.py``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             str(HERE / "speed_bench.py"), "--client", variant, url, "--requests", str(requests),
             "--concurrency", str(concurrency), "--warmup", str(warmup)],
            capture_output=True, text=True, timeout=1800, check=False,
        )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run of {variant} failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", type=int, default=200)
    p.add_argument("--large", type=int, default=600)
    p.add_argument("--warmup", type=int, default=100)
    a = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    server = Server()
    server.start()
    per: dict[tuple[str, int], float] = {}
    try:
        for variant, c in RUNS:
            t0 = time.time()
            small = instructions(variant, server.url, a.small, c, a.warmup)
            large = instructions(variant, server.url, a.large, c, a.warmup)
            per[(variant, c)] = (large - small) / (a.large - a.small)
            print(f"{variant:18} c={c:<3} {per[(variant, c)]:>12,.0f} instructions/request "
                  f"({time.time() - t0:.0f} s)", flush=True)
    finally:
        server.stop()
    m = machine()
    lines = [
        "# Instructions per request (valgrind callgrind)",
        "",
        "Written by `bench/instructions_bench.py`. Each client of `bench/speed_bench.py` runs under",
        f"callgrind twice ({a.small} and {a.large} measured requests after {a.warmup} warm-up requests,",
        "against nginx on 127.0.0.1); the difference divided by the extra requests is what one",
        "more request costs. Deterministic: the same count whatever else the machine does.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['os']}",
        f"- Python {m['python']}; {m['versions']}; {m['date']}",
        f"- Server: {server.kind}",
        "",
        "| client | c | instructions per request |",
        "|---|---|---|",
    ]
    lines += [f"| {label(v)} | {c} | {n:,.0f} |" for (v, c), n in per.items()]
    lines += ["", "| comparison | c=1 | c=64 |", "|---|---|---|"]
    for ours, base, text in PAIRS:
        cells = [
            f"{per[(ours, c)] / per[(base, c)]:.3f}×" if (ours, c) in per and (base, c) in per else "—"
            for c in (1, 64)
        ]
        lines.append(f"| {text} | {cells[0]} | {cells[1]} |")
    (HERE / "RESULTS_instructions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
