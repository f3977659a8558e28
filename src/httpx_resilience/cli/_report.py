"""The demo report: one self-contained HTML page that draws what the run did.

No network and no chart library: the charts are inline SVG (:mod:`._svg`),
the styles inline CSS. A few lines of script only check, once the page has
loaded, that every chart drew something, and write the result on the
``<body>`` (``data-charts="6/6"``), which is what the report test reads after
rendering the page in headless Chromium.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from ._demo_run import FALLBACK, ClientRun, DemoRun
from ._svg import Band, Series, band_chart, hbar_chart, histogram, stacked_bars

__all__ = ["CHARTS", "render_report", "write_report"]

CHARTS = ("outcomes-plain", "outcomes-ours", "breaker", "latency", "amplification", "limiter")
"""The charts every report draws, in page order."""

PLAIN, OURS = "#8a8f98", "#3f51b5"
OK, FAILED, REFUSED, STALE = "#2e7d32", "#c62828", "#ef8f00", "#1e88e5"
STATE_COLORS = {"closed": "#2e7d32", "open": "#c62828", "half_open": "#ef8f00"}
BUCKET = 0.25  # seconds per bar of the charts over time

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f5f6fa;color:#1d2129}
header{background:#283593;color:#fff;padding:22px 32px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;opacity:.85}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px;
margin-bottom:18px}
.tile{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.tile .k{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5f6673}
.tile .v{font-size:22px;font-weight:600}
.tile .v small{font-size:13px;font-weight:400;color:#5f6673}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}
section.card{background:#fff;border-radius:8px;padding:14px 18px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
section.card h2{font-size:16px;margin:0 0 2px}
section.card p{margin:0 0 8px;color:#5f6673;font-size:13px}
svg.chart{width:100%;height:auto;display:block}
.tick,.row-label,.value,.phase-label,.marker-label{font-size:11px;fill:#5f6673}
.row-label{font-size:12px;fill:#1d2129} .value{fill:#1d2129}
line.grid{stroke:#eceef3}
.phase{fill:#fdecea}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#5f6673}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:6px}
td,th{padding:4px 8px;border-bottom:1px solid #eceef3;text-align:right}
td:first-child,th:first-child{text-align:left}
footer{color:#5f6673;font-size:12px;margin-top:18px}"""

_CHECK = """
window.addEventListener("load", function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.chart"));
  var drawn = charts.filter(function (svg) {
    return Array.prototype.some.call(svg.querySelectorAll(".mark"), function (m) {
      var b = m.getBBox(); return b.width > 0 && b.height > 0;
    });
  });
  document.body.setAttribute("data-charts", drawn.length + "/" + charts.length);
});
"""


def _legend(*items: tuple[str, str]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{c}"></i>{escape(label)}</span>' for label, c in items
        )
        + "</div>"
    )


def _buckets(duration: float) -> int:
    return max(1, math.ceil(duration / BUCKET))


def _outcomes(run: ClientRun, duration: float) -> list[Series]:
    n = _buckets(duration)
    ok, failed, refused, stale = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    for r in run.records:
        i = min(n - 1, int(r.started / BUCKET))
        if r.outcome == FALLBACK:
            stale[i] += 1
        elif r.ok:
            ok[i] += 1
        elif r.outcome == "CircuitBreakerOpenError":
            refused[i] += 1
        else:
            failed[i] += 1
    return [
        Series("succeeded", OK, ok),
        Series("served by the fallback (stale)", STALE, stale),
        Series("refused at once by the open breaker", REFUSED, refused),
        Series("failed", FAILED, failed),
    ]


def _breaker_bands(run: ClientRun, duration: float) -> list[Band]:
    bands, state, since = [], "closed", 0.0
    for at, new in run.breaker:
        if at > since:
            bands.append(Band(since, at, state, STATE_COLORS.get(state, OK)))
        state, since = new, at
    bands.append(Band(since, duration, state, STATE_COLORS.get(state, OK)))
    return bands


def _latency(
    run: ClientRun, color: str, label: str, edges: list[float]
) -> tuple[Series, dict[str, float]]:
    counts = [0.0] * (len(edges) - 1)
    for r in run.records:
        x = min(max(r.latency, edges[0]), edges[-1] * 0.999)
        i = min(len(counts) - 1, int((math.log10(x) - math.log10(edges[0])) * 4))
        counts[i] += 1
    return Series(label, color, counts), {"p50": run.percentile(0.5), "p99": run.percentile(0.99)}


def _limiter(run: ClientRun, duration: float) -> list[Series]:
    n = _buckets(duration)
    waited = [0.0] * n
    for at, seconds in run.limiter_waits:
        waited[min(n - 1, int(at / BUCKET))] += seconds
    # A bar of height zero draws nothing: an empty run shows a baseline instead.
    return [Series("seconds waited for the limiter", OURS, [round(w, 3) for w in waited])]


def _tile(key: str, plain: str, ours: str) -> str:
    return (
        f'<div class="tile"><div class="k">{escape(key)}</div>'
        f'<div class="v">{escape(ours)} <small>ours · plain {escape(plain)}</small></div></div>'
    )


def _fallback_note(run: ClientRun) -> str:
    n = run.served_by_fallback
    return f" · {n} ours by the fallback" if n else ""


def _card(title: str, note: str, body: str) -> str:
    return f'<section class="card"><h2>{escape(title)}</h2><p>{escape(note)}</p>{body}</section>'


def _failure_table(run: DemoRun) -> str:
    rows = []
    kinds = list(dict.fromkeys([*run.plain.failures(), *run.ours.failures()]))
    for kind in kinds[:8]:
        rows.append(
            f"<tr><td>{escape(kind)}</td><td>{run.plain.failures().get(kind, 0)}</td>"
            f"<td>{run.ours.failures().get(kind, 0)}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="3">no failures</td></tr>')
    return (
        "<table><tr><th>how it failed</th><th>plain httpx</th><th>httpx-resilience</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _posts_note(run: DemoRun) -> str:
    every = run.scenario.post_every
    if not every:
        return "This scenario sends GETs only."
    return f"One request in {every} is a POST with a once-only id: the server counts any copy."


def render_report(run: DemoRun) -> str:
    """The report page for ``run``, as one HTML string."""
    d = max(
        run.duration, max((r.ended for r in (*run.plain.records, *run.ours.records)), default=0.0)
    )
    p, o = run.plain, run.ours
    edges = [10 ** (k / 4) / 1000 for k in range(0, 17)]  # 1 ms .. 10 s, four buckets a decade
    limiter_waits = len(o.limiter_waits)
    charts = [
        _card(
            "plain httpx: outcomes over time",
            f"requests started per {BUCKET * 1000:.0f} ms; shaded: a fault phase",
            stacked_bars(
                "outcomes-plain", "plain httpx outcomes over time", _outcomes(p, d), d, run.phases
            ),
        ),
        _card(
            "httpx-resilience: outcomes over time",
            "the same traffic and faults, through the pipeline",
            stacked_bars(
                "outcomes-ours",
                "httpx-resilience outcomes over time",
                _outcomes(o, d),
                d,
                run.phases,
            ),
        ),
        _card(
            "circuit breaker state",
            f"{len(o.breaker)} transitions; plain httpx has no breaker",
            band_chart("breaker", "breaker state over time", [("ours", _breaker_bands(o, d))], d)
            + _legend(*((s.replace("_", "-"), c) for s, c in STATE_COLORS.items())),
        ),
        _card(
            "latency distribution",
            "each logical request, from its planned start (queueing included); dashed: p50 and p99",
            histogram(
                "latency",
                "latency distribution",
                [
                    _latency(p, PLAIN, "plain httpx", edges),
                    _latency(o, OURS, "httpx-resilience", edges),
                ],
                edges,
            )
            + _legend(("plain httpx", PLAIN), ("httpx-resilience", OURS)),
        ),
        _card(
            "upstream amplification",
            "requests the upstream received per logical request (retries and hedges included)",
            hbar_chart(
                "amplification",
                "upstream requests per logical request",
                [
                    (
                        "plain httpx",
                        p.amplification,
                        PLAIN,
                        f"{p.amplification:.2f}× ({p.upstream} for {p.requests})",
                    ),
                    (
                        "resilience",
                        o.amplification,
                        OURS,
                        f"{o.amplification:.2f}× ({o.upstream} for {o.requests})",
                    ),
                ],
            ),
        ),
        _card(
            "rate-limiter waits",
            f"{limiter_waits} waits, {sum(w for _, w in o.limiter_waits):.1f} s in all"
            + (
                ""
                if run.scenario.limiter_rate
                else " (this scenario has no limiter: try --scenario rate-limited)"
            ),
            stacked_bars(
                "limiter", "seconds waited for the limiter over time", _limiter(o, d), d, run.phases
            ),
        ),
    ]
    tiles = "".join(
        [
            _tile(
                "answered" if o.served_by_fallback else "success",
                f"{p.success_rate:.1%}" + _fallback_note(o),
                f"{o.success_rate:.1%}",
            ),
            _tile("upstream per request", f"{p.amplification:.2f}×", f"{o.amplification:.2f}×"),
            _tile(
                "p50 latency",
                f"{p.percentile(0.5) * 1000:.0f} ms",
                f"{o.percentile(0.5) * 1000:.0f} ms",
            ),
            _tile(
                "p99 latency",
                f"{p.percentile(0.99) * 1000:.0f} ms",
                f"{o.percentile(0.99) * 1000:.0f} ms",
            ),
            _tile("POSTs sent twice", str(p.duplicates), str(o.duplicates)),
        ]
    )
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    legend = _legend(
        ("succeeded", OK),
        ("served by the fallback (stale)", STALE),
        ("refused at once by the open breaker", REFUSED),
        ("failed", FAILED),
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>httpx-resilience demo: {escape(run.scenario.name)}</title>
<style>{_CSS}</style></head>
<body data-charts="pending">
<header><h1>plain httpx vs httpx-resilience: {escape(run.scenario.name)}</h1>
<p>{escape(run.scenario.summary)}. {p.requests} requests per client over {run.duration:g} s,
seed {run.seed}.</p></header>
<main>
<div class="tiles">{tiles}</div>
{legend}
<div class="charts">{"".join(charts)}</div>
<section class="card" style="margin-top:16px"><h2>how requests failed</h2>
{_failure_table(run)}</section>
<footer>Generated by <code>httpx-resilience demo --scenario {escape(run.scenario.name)}
--seed {run.seed}</code> on {when}; both clients sent the same traffic at the same time to an
embedded ChaosServer on loopback. {_posts_note(run)}</footer>
</main>
<script>{_CHECK}</script>
</body></html>
"""


def write_report(run: DemoRun, path: str | Path) -> Path:
    """Write the report to ``path`` (parents created); returns the absolute path."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(run), encoding="utf-8")
    return target
