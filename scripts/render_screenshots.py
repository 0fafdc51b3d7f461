#!/usr/bin/env python3
"""Render the README's pictures from sample_logs/ so they always show real output.

Builds a fresh store with `toolctl ingest sample_logs/`, then runs the real commands
in-process with their Rich console swapped for a recording one, and saves each screen
as SVG (Rich's ``Console.save_svg``) into docs/images/:

    stats.svg         toolctl stats --by tool
    stats-plot.svg    toolctl stats --every 30m --plot --tool fetch_url   (the retry storm)
    histogram.svg     toolctl stats --histogram --tool search_web
    audit-trace.svg   toolctl audit trace <a sample trace with a retried call>
    gate.svg          toolctl gate --baseline v1.8.2 --candidate v1.9.0-rc1 --until 2026-11-24T12:00:00Z
    top.svg           toolctl top --once --window 15m --until 2026-11-24T09:30:00Z

Usage: python scripts/render_screenshots.py [--out docs/images] [--keep-store PATH]
The output is deterministic for the same sample logs, toolctl and Rich versions: every
window is fixed (`--until`), and the script renders in an environment of its own (see
``isolate``), whatever the shell, terminal or toolctl settings it runs from.
tests/test_views_render.py checks docs/images/ is byte for byte what it draws.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

UNTIL = "2026-11-24T12:00:00Z"

# A session that shows a retried call among other tools, small enough for one screen:
# 4 to 8 attempts, at least two tools, one call with a second attempt. Smallest first,
# then by trace id, so the choice is stable.
PICK_TRACE = """
SELECT trace_id
FROM tool_calls
WHERE trace_id IS NOT NULL
GROUP BY trace_id
HAVING count(*) BETWEEN 4 AND 8 AND count(DISTINCT tool) >= 2 AND max(attempt) >= 2
ORDER BY count(*), trace_id
LIMIT 1
"""


#: Variables Rich reads for a console's size, colours and terminal features.
RICH_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
            "COLUMNS", "LINES", "JUPYTER_COLUMNS", "JUPYTER_LINES")


def isolate(tmp: Path) -> None:
    """Render as on a plain xterm with no toolctl settings: drop the TOOLCTL_* variables
    (a collector URL, redaction rules, the store) and Rich's, and pin the configuration
    file to an empty one, so neither ./toolctl.toml nor the per-user file applies. The
    ingest subprocess inherits this environment."""
    for var in list(os.environ):
        if var.startswith("TOOLCTL_") or var in RICH_ENV:
            del os.environ[var]
    os.environ["TERM"] = "xterm-256color"
    config = tmp / "toolctl.toml"
    config.write_text("", "utf-8")
    os.environ["TOOLCTL_CONFIG"] = str(config)


def build_store(db: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "toolctl", "--db", str(db), "ingest", str(REPO / "sample_logs")],
                         cwd=REPO, capture_output=True, text=True)
    if res.returncode not in (0, 3):  # 3: the sample's 150 intentionally bad lines were rejected
        sys.exit(f"ingest failed ({res.returncode}): {res.stderr}")


def pick_trace(db: Path) -> str:
    from toolctl.store import Store

    with Store.open(db, write=False) as store:
        trace = store.scalar(PICK_TRACE)
    if trace is None:
        sys.exit("no suitable trace in the sample store")
    return trace


def render(args: list[str], out: Path, title: str, width: int) -> int:
    """Run `toolctl ARGS` with a recording console on stdout; save it as SVG."""
    from rich.console import Console

    from toolctl.cli import _output, app

    console = Console(file=io.StringIO(), record=True, width=width, force_terminal=True,
                      color_system="truecolor", highlight=False, soft_wrap=False)
    _output._stdout = console
    try:
        code = app(args=args, prog_name="toolctl", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    finally:
        _output._stdout = None
    console.save_svg(str(out), title=title)
    return int(code or 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "images"))
    ap.add_argument("--keep-store", metavar="PATH", help="build the store here and keep it")
    opts = ap.parse_args()
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        isolate(Path(tmp))
        db = Path(opts.keep_store) if opts.keep_store else Path(tmp) / "sample.duckdb"
        if db.exists():
            sys.exit(f"{db} exists: pass a new path to --keep-store")
        build_store(db)
        trace = pick_trace(db)
        base = ["--db", str(db)]
        screens = [
            ("stats", ["stats", "--by", "tool"], "toolctl stats --by tool", 120),
            ("stats-plot", ["stats", "--every", "30m", "--plot", "--tool", "fetch_url"],
             "toolctl stats --every 30m --plot --tool fetch_url", 80),
            ("histogram", ["stats", "--histogram", "--tool", "search_web"],
             "toolctl stats --histogram --tool search_web", 100),
            ("audit-trace", ["audit", "trace", trace], f"toolctl audit trace {trace}", 120),
            ("gate", ["gate", "--baseline", "v1.8.2", "--candidate", "v1.9.0-rc1", "--until", UNTIL],
             "toolctl gate --baseline v1.8.2 --candidate v1.9.0-rc1", 150),
            ("top", ["top", "--once", "--window", "15m", "--until", "2026-11-24T09:30:00Z"],
             "toolctl top --window 15m", 120),
        ]
        for name, args, title, width in screens:
            code = render(base + args, out / f"{name}.svg", title, width)
            print(f"{out / (name + '.svg')}  (toolctl {' '.join(args)}: exit {code})")


if __name__ == "__main__":
    main()
