"""`toolctl top`: a live per-tool view of the last few minutes (q or Ctrl-C quits)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Annotated, Iterator, Optional

import typer

from toolctl.cli._output import DocFormat, print_json, stdout


def register(app: typer.Typer) -> None:
    app.command("top")(top)


def top(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="Show the last N minutes: 1m, 5m, 1h.")] = "5m",
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.1)] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (the default when stdout is not a terminal).")] = False,
    until: Annotated[Optional[str], typer.Option(help="End the window here instead of now (RFC 3339 or an age); replays history.")] = None,
    tool: Annotated[Optional[str], typer.Option(help="Only this tool.")] = None,
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant.")] = None,
    version: Annotated[Optional[str], typer.Option(help="Only this version.")] = None,
    service: Annotated[Optional[str], typer.Option(help="Only this service.")] = None,
    fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format (json implies --once).")] = DocFormat.table,
) -> None:
    """Live per-tool calls/s, error rate, p95, auth failures and retries; worst movers first.

    Example: toolctl top --window 5m --interval 2
    """
    from toolctl import api
    from toolctl.metrics.live import LiveQuery
    from toolctl.timeutil import parse_duration, parse_time, utcnow

    q = LiveQuery(window=parse_duration(window, option="--window"),
                  until=parse_time(until, option="--until", now=utcnow()),
                  tool=tool, tenant=tenant, version=version, service=service)

    live_mode = {"on": False}

    def open_store():
        # Opened per refresh: a local read must not hold the file between frames (a
        # `toolctl serve` or an ingest may want it), and a collector started meanwhile is found.
        # While live, a busy file is reported in the frame after about one interval instead
        # of the default 10 s wait, so q stays responsive.
        from toolctl.remote import discovery_path
        from toolctl.store import Store

        if live_mode["on"] and not discovery_path(ctx.obj.db_path).exists():
            return Store.open(ctx.obj.db_path, write=False, wait_seconds=max(0.5, interval))
        return ctx.obj.open_read()

    def snapshot() -> dict:
        with open_store() as store:
            return api.read(store, "live", q)

    console = stdout()
    if fmt is DocFormat.json:
        print_json(snapshot())
        return
    from toolctl.cli._views import top_table

    if once or not console.is_terminal or sys.stdin is None or not sys.stdin.isatty():
        console.print(top_table(snapshot()))
        return
    live_mode["on"] = True
    _run_live(console, snapshot, top_table, interval)


def _run_live(console, snapshot, render, interval: float) -> None:
    import select

    from rich.console import Group
    from rich.live import Live

    from toolctl.cli._output import error_lines
    from toolctl.errors import ToolctlError
    from rich.text import Text

    frame = 0
    try:
        with _ctrl_c_as_a_key() as interrupted, _cbreak(sys.stdin.fileno()), \
                Live(console=console, screen=True, auto_refresh=False, redirect_stderr=False) as live:
            while not interrupted():
                frame += 1
                try:
                    body = render(snapshot(), title_suffix=f"  frame {frame}")
                except ToolctlError as exc:
                    # A busy store or a restarting collector is a passing state of a live
                    # view: say so in the frame and try again at the next refresh.
                    body = Text(f"frame {frame}: {' '.join(error_lines(exc))}", style="bold red")
                live.update(Group(body, Text(f"refresh every {interval:g}s · q or Ctrl-C quits",
                                             style="dim")), refresh=True)
                ready, _, _ = select.select([sys.stdin, interrupted.fd], [], [], interval)
                if interrupted.fd in ready:  # any handled signal writes here: read it, or it
                    os.read(interrupted.fd, 512)  # stays readable and frames redraw nonstop
                if sys.stdin in ready and os.read(sys.stdin.fileno(), 32).lower().find(b"q") >= 0:
                    break
    except KeyboardInterrupt:
        pass  # a Ctrl-C before the handler was in place: the context managers restore the terminal


class _Interrupted:
    """Set by SIGINT; ``fd`` becomes readable when it is (for select)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.flag = False

    def __call__(self) -> bool:
        return self.flag


@contextmanager
def _ctrl_c_as_a_key() -> Iterator[_Interrupted]:
    """Ctrl-C (or SIGTERM) ends the live view at the next loop check instead of raising KeyboardInterrupt
    wherever the main thread happens to be (inside DuckDB opening or closing the store, or
    Rich drawing a frame). The signal wakes the select() at once through a wakeup pipe."""
    import signal

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    os.set_blocking(read_fd, False)
    state = _Interrupted(read_fd)

    def on_sigint(signum, frame) -> None:
        state.flag = True

    # SIGTERM (`kill`, `timeout`, a closing tmux pane) too: its default action would end the
    # process on the alternate screen, with the cursor hidden and the terminal in cbreak mode.
    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_fd = signal.set_wakeup_fd(write_fd)
    try:
        yield state
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(read_fd)
        os.close(write_fd)


@contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Keys arrive one at a time without echo; the terminal's settings come back on exit."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
