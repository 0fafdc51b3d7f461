"""Renderers of the chart views: ``stats --plot``, ``stats --histogram`` and ``top`` frames.

Each takes the JSON-ready data of a library read and a Rich console. When the console is
not a terminal (a pipe, a file, CI) the output is plain ASCII text with the same numbers,
so it can be diffed and grepped.
"""

from __future__ import annotations

from typing import Any

from toolctl.cli._charts import column_chart, hbar
from toolctl.cli._output import fmt_int, fmt_ms, fmt_pct
from toolctl.cli._output import label as data_text  # `label` names a group's label here

CHART_HEIGHT = 8
BAR_WIDTH = 40


def _group_label(row: dict, dims: list[str], scope: str) -> str:
    return ", ".join(f"{d}={'∅' if row[d] is None else row[d]}" for d in dims) or scope


def _groups(rows: list[dict], dims: list[str], scope: str,
            calls: dict[tuple, int]) -> list[tuple[str, list[dict]]]:
    """Rows per group, most calls first (``calls``: each group's unbucketed calls) — buckets
    stay in time order."""
    out: dict[tuple, list[dict]] = {}
    for r in rows:
        out.setdefault(tuple(r[d] for d in dims), []).append(r)
    ordered = sorted(out.items(), key=lambda kv: -calls.get(kv[0], 0))
    return [(_group_label(v[0], dims, scope), v) for _, v in ordered]


def render_plot(rows: list[dict], totals: list[dict], dims: list[str], every: str | None,
                console: Any, scope: str = "all calls") -> None:
    """Per-bucket error rate and p95 of each group: column charts on a terminal, an ASCII
    table with bars otherwise. ``rows`` are ``stats`` rows with ``bucket``; ``totals`` the
    rows of the same query without buckets (one per group), whose calls the heading shows:
    a call whose attempts fall into two buckets counts in both, but once in its group.
    ``scope`` names the filters (the heading when there is no --by)."""
    from rich.text import Text

    if not rows:
        console.print("No tool calls in this window. Ingest logs with `toolctl ingest PATH`.")
        return
    calls_of = {tuple(t[d] for d in dims): t["calls"] for t in totals}
    buckets = sorted({r["bucket"] for r in rows})
    plain = not console.is_terminal
    for label, group in _groups(rows, dims, scope, calls_of):
        by_bucket = {r["bucket"]: r for r in group}
        series = [by_bucket.get(b) for b in buckets]
        err = [None if r is None else r["error_rate"] for r in series]
        p95 = [None if r is None or r["p95_ms"] is None else r["p95_ms"] for r in series]
        calls = calls_of[tuple(group[0][d] for d in dims)]
        head = (f"{label}: {fmt_int(calls)} call{'' if calls == 1 else 's'} in {len(group)} of "
                f"{len(buckets)} bucket{'' if len(buckets) == 1 else 's'} of {every}")
        if plain:
            _plain_plot(console, head, series, buckets)
            continue
        console.print(data_text(head, style="bold"))
        x_first, x_last = buckets[0][11:16], buckets[-1][11:16]
        for name, vals, fmt, style in (("error rate", err, fmt_pct, "red"),
                                       ("p95 ms", p95, fmt_ms, "cyan")):
            lines = column_chart(vals, height=CHART_HEIGHT, label=name, fmt=fmt,
                                 x_first=x_first, x_last=x_last)
            console.print(data_text(lines[0], style="bold"))
            for line in lines[1:CHART_HEIGHT + 1]:
                axis, _, cols = line.partition("┤")
                console.print(Text(axis + "┤") + Text(cols, style=style))
            for line in lines[CHART_HEIGHT + 1:]:
                console.print(line)
        console.print()


def _plain_plot(console: Any, head: str, series: list[dict | None], buckets: list[str]) -> None:
    present = [r for r in series if r is not None]
    top_err = max((r["error_rate"] for r in present), default=0.0)
    top_p95 = max((r["p95_ms"] or 0.0 for r in present), default=0.0)
    width = BAR_WIDTH // 2
    out = [head, f"{'bucket':<20}  {'calls':>7}  {'error rate':>10}  {'':<{width}}  {'p95 ms':>9}"]
    for b, r in zip(buckets, series):
        if r is None:
            out.append(f"{b:<20}  {'–':>7}")
            continue
        out.append(f"{b:<20}  {fmt_int(r['calls']):>7}  {fmt_pct(r['error_rate']):>10}  "
                   f"{hbar(r['error_rate'], top_err, width, ascii_only=True):<{width}}  "
                   f"{fmt_ms(r['p95_ms']):>9}  {hbar(r['p95_ms'] or 0.0, top_p95, width, ascii_only=True)}".rstrip())
    for line in out + [""]:
        console.print(line, markup=False, highlight=False)


MARKS = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))


def histogram_marks(doc: dict) -> dict[int, list[str]]:
    """Which bin each percentile falls in (lower <= p < upper; the last bin is closed)."""
    bins = doc["bins"]
    marks: dict[int, list[str]] = {}
    for key, name in MARKS:
        p = doc.get(key)
        if p is None or not bins:
            continue
        idx = next((i for i, b in enumerate(bins) if b["lower_ms"] <= p < b["upper_ms"]), len(bins) - 1)
        marks.setdefault(idx, []).append(f"{name} {fmt_ms(p)} ms")
    return marks


def render_histogram(doc: dict, console: Any) -> None:
    """Bins as horizontal bars with p50/p95/p99 marked at the bin that holds them."""
    from rich.text import Text

    what = ", ".join(f"{k}={doc[k]}" for k in ("tool", "tenant", "version", "service", "status") if doc.get(k))
    head = (f"Latency of {fmt_int(doc['count'])} attempts" + (f" ({what})" if what else "")
            + f", {doc['scale']} bins")
    if not doc["bins"]:
        console.print("No tool calls match. Check --tool/--since, or ingest logs with `toolctl ingest PATH`.",
                      markup=False)
        return
    plain = not console.is_terminal
    marks = histogram_marks(doc)
    top = max(b["count"] for b in doc["bins"])
    console.print(data_text(head, style="bold"))
    console.print(Text(f"p50 {fmt_ms(doc['p50_ms'])} ms   p95 {fmt_ms(doc['p95_ms'])} ms   "
                       f"p99 {fmt_ms(doc['p99_ms'])} ms"))
    lo_w = max(len(fmt_ms(b["lower_ms"])) for b in doc["bins"])
    hi_w = max(len(fmt_ms(b["upper_ms"])) for b in doc["bins"])
    n_w = max(len(fmt_int(b["count"])) for b in doc["bins"])
    console.print(f"{'ms from':>{lo_w}}   {'to':<{hi_w}}  {'count':>{n_w}}", markup=False)
    for i, b in enumerate(doc["bins"]):
        bar = hbar(b["count"], top, BAR_WIDTH, ascii_only=plain)
        line = Text(f"{fmt_ms(b['lower_ms']):>{lo_w}} – {fmt_ms(b['upper_ms']):<{hi_w}}  "
                    f"{fmt_int(b['count']):>{n_w}}  ")
        line.append(f"{bar:<{BAR_WIDTH}}", style="cyan")
        if i in marks:
            line.append(("  <- " if plain else "  ◀ ") + ", ".join(marks[i]), style="bold yellow")
        if plain:
            line.rstrip()  # in place: no trailing blanks in files and pipes
        console.print(line)


# -- toolctl top ------------------------------------------------------------------------------
def top_table(snap: dict, *, title_suffix: str = ""):
    """One frame of ``toolctl top`` as a Rich table; movers are highlighted and ranked."""
    from rich.table import Table
    from rich.text import Text

    window = _fmt_window(snap["window_s"])
    total = snap["total"]
    title = f"toolctl top — last {window} [{snap['since']} .. {snap['until']})" + title_suffix
    if total:
        caption = (f"{fmt_int(total['calls'])} calls ({total['calls'] / snap['window_s']:.2f}/s), "
                   f"error rate {fmt_pct(total['error_rate'])}, p95 {fmt_ms(total['p95_ms'])} ms, "
                   f"{fmt_int(total['auth_failures'])} auth failures, {fmt_int(total['retries'])} retries. "
                   f"Δ vs the prior {window}. "
                   + ("Worst movers: " + ", ".join(snap["movers"]) if snap["movers"] else "No movers."))
    else:
        caption = f"No tool calls in the last {window}."
    t = Table(title=title, caption=caption, caption_justify="left", header_style="bold")
    for header, justify in (("#", "right"), ("tool", "left"), ("calls/s", "right"), ("calls", "right"),
                            ("error rate", "right"), ("Δ err", "right"), ("p95 ms", "right"),
                            ("p95 ×", "right"), ("auth fail", "right"), ("retries", "right")):
        t.add_column(header, justify=justify)  # type: ignore[arg-type]
    for r in snap["rows"]:
        rank = r["mover_rank"]
        style = "bold red" if rank == 1 else "red" if rank else ""
        d_err = "–" if r["error_rate_delta"] is None else f"{r['error_rate_delta'] * 100:+.2f}pp"
        ratio = "–" if r["p95_ratio"] is None else f"{r['p95_ratio']:.2f}×"
        t.add_row(Text("▲" + str(rank) if rank else ""), data_text(str(r["tool"])),
                  f"{r['calls_per_s']:.2f}", fmt_int(r["calls"]), fmt_pct(r["error_rate"]), d_err,
                  fmt_ms(r["p95_ms"]), ratio, fmt_int(r["auth_failures"]), fmt_int(r["retries"]),
                  style=style)
    return t


def _fmt_window(seconds: float) -> str:
    s = int(seconds)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s % n == 0 and s >= n:
            return f"{s // n}{unit}"
    return f"{s}s"
