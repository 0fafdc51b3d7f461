"""The one place the CLI talks to the terminal: tables, JSON, CSV, errors, progress.

Human output is a Rich table on stdout; ``--format json`` prints exactly one JSON
document on stdout; diagnostics, warnings and progress go to stderr. ``fail`` is the only
way a command reports an error.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from enum import Enum
from typing import Any, Iterable, NoReturn, Sequence

from toolctl.errors import ToolctlError


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class DocFormat(str, Enum):
    """For commands whose output is not a table of rows."""

    table = "table"
    json = "json"


_stdout = None
_stderr = None

#: Characters that steer a terminal rather than print: C0 and C1 controls (ESC starts the
#: colour, title, clipboard and hyperlink sequences; DEL) and the explicit bidi overrides
#: and isolates, which reorder what is shown; the Unicode line and paragraph separators.
#: Tab and newline print as themselves.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Data (a tool name, a message, a raw line from a log) as text a terminal shows
    rather than obeys: each control character becomes its escape, e.g. ``\\x1b``."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def label(text: str, style: str = ""):
    """Data as a Rich Text node (a tree label, a line): never markup, and its control
    characters shown as escapes before Rich's Text drops BEL, BS, CR, VT and FF."""
    from rich.text import Text

    return Text(printable(text), style=style)


def _console(**kwargs: Any):
    """A Rich console that never writes a control character taken from the data.

    Tables escape their cells before they are measured (``table``); this is the net for
    everything else printed: every segment of text, but not the control segments Rich
    itself emits (cursor moves of a live display), is escaped just before it is written.
    """
    from rich.console import Console
    from rich.segment import Segment

    class _SafeConsole(Console):
        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            return super()._render_buffer(
                Segment(printable(seg.text), seg.style, seg.control) if not seg.control else seg
                for seg in buffer)

    # Markup off: paths and names in f-strings ("backup [x].duckdb") are data, never tags.
    return _SafeConsole(markup=False, **kwargs)


class _ClosedReaderSafe:
    """sys.stdout (or its byte buffer) that survives its reader going away.

    ``toolctl gate … | head -1``: once head exits, every write to stdout fails with EPIPE.
    The command's work is done (a verdict recorded, a ledger entry written) and its exit code
    is what a CI script acts on, so the output nobody reads is dropped instead: fd 1 is
    pointed at /dev/null (so the interpreter's final flush cannot fail either) and the
    command runs on to the exit code it would have returned. Rich, click (``--help``,
    ``typer.echo``) and the JSON/CSV writers all write through ``sys.stdout``, so this one
    wrapper covers every command.
    """

    def __init__(self, stream: Any):
        self._stream = stream

    def _closed(self) -> None:
        global stdout_closed
        stdout_closed = True
        if _stdout is not None:
            _stdout.quiet = True  # nothing more to render
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._stream.fileno())
            finally:
                os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # no file descriptor (an embedding harness): writes are still swallowed here

    def write(self, data: Any) -> int:
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            self._closed()
            return len(data)

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()
            try:
                self._stream.flush()  # what was buffered goes to /dev/null now
            except OSError:
                pass

    @property
    def buffer(self) -> Any:
        return _ClosedReaderSafe(self._stream.buffer)  # AttributeError for a text-only stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


#: True once stdout's reader went away (see ``guard_stdout``).
stdout_closed = False


def guard_stdout() -> None:
    """Make stdout survive a closed reader (``| head``) for the rest of the process: the
    command keeps its exit code, with no traceback and no "Exception ignored" at exit."""
    if not isinstance(sys.stdout, _ClosedReaderSafe) and sys.stdout is not None:
        sys.stdout = _ClosedReaderSafe(sys.stdout)  # type: ignore[assignment]


def flush_stdout() -> None:
    """Flush stdout before the interpreter does (a closed reader is handled here, not at exit)."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass


def stdout():
    """Rich console on stdout (colour off for NO_COLOR and non-TTY, as Rich decides)."""
    global _stdout
    if _stdout is None:
        # Piped output (files, CI logs, `less`) gets the table's natural width instead of
        # Rich's 80-column default, so nothing is truncated or cropped.
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240
        _stdout = _console(highlight=False, soft_wrap=False, width=width)
    return _stdout


def stderr():
    global _stderr
    if _stderr is None:
        _stderr = _console(stderr=True, highlight=False)
    return _stderr


def print_json(doc: Any) -> None:
    """One JSON document and a newline on stdout (rendering rules: ``toolctl.jsonio``)."""
    _write_lines([doc])


def print_jsonl(rows: Iterable[Any]) -> None:
    """One JSON document per line on stdout."""
    _write_lines(rows)


def _write_lines(docs: Iterable[Any]) -> None:
    from toolctl.jsonio import dumps

    data = b"".join(dumps(doc) + b"\n" for doc in docs)
    sys.stdout.flush()  # text already written goes first
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stdout (an embedding harness)
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
    else:
        out.write(data)
        out.flush()


def print_csv(rows: Sequence[dict], columns: Sequence[str]) -> None:
    """RFC 4180 fields, one row per line ending in "\\n".

    The writer quotes a field holding any character of its line terminator, so it is given
    "\\r\\n" (a group key with a lone CR is quoted too, as readers split rows there) and each
    row's terminator is then written as "\\n".
    """
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")

    def flush() -> None:
        sys.stdout.write(buf.getvalue()[:-2] + "\n")
        buf.seek(0)
        buf.truncate()

    writer.writeheader()
    flush()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
        flush()


def warn(message: str) -> None:
    from rich.text import Text

    stderr().print(Text("Warning:", style="yellow") + Text(f" {message}"))


def note(message: str) -> None:
    stderr().print(message, style="dim")


def error_lines(exc: ToolctlError) -> list[str]:
    """``Error: …`` and ``Hint: …``, control characters from the data escaped (a message
    can quote a tool name, a file name or a line)."""
    lines = [f"Error: {printable(exc.message)}"]
    if exc.hint:
        lines.append(f"Hint: {printable(exc.hint)}")
    return lines


def print_error(exc: ToolctlError) -> None:
    """``Error: …`` / ``Hint: …`` on stderr (a verdict command goes on to its error report)."""
    for line in error_lines(exc):
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def fail(exc: ToolctlError) -> NoReturn:
    """Print ``Error: …`` / ``Hint: …`` on stderr and exit with the error's code."""
    print_error(exc)
    raise SystemExit(exc.exit_code)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


class ByteProgress:
    """A progress bar over bytes on stderr, only when stderr is a terminal."""

    def __init__(self, description: str):
        self.description = description
        self._progress = None
        self._task = None

    def __enter__(self) -> "ByteProgress":
        if stderr_is_tty():
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                       TimeRemainingColumn, TransferSpeedColumn)

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(), console=stderr(), transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=None)
        return self

    def update(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def table(title: str | None, columns: Iterable[tuple[str, str]], rows: Iterable[Sequence[Any]],
          caption: str | None = None):
    """A Rich table; ``columns`` is (header, justify) or (header, justify, "prose")."""
    from rich.table import Table
    from rich.text import Text

    from rich.cells import cell_len

    rows = [[Text(printable(c)) if isinstance(c, str) else c for c in row] for row in rows]
    t = Table(title=title, caption=caption, caption_justify="left", header_style="bold")
    for i, (header, justify, *kind) in enumerate(columns):
        # Names (left-aligned keys) are what an operator looks for: keep them readable when
        # the terminal is narrow and let the numbers give way first. Prose columns (kind
        # "prose": a reason, a message) wrap freely, so they never push the table past the
        # terminal's edge.
        widest = max((cell_len(r[i].plain) for r in rows if isinstance(r[i], Text)), default=0)
        min_width = (min(max(widest, cell_len(header)), 20)
                     if justify == "left" and kind != ["prose"] else None)
        # A number cut to "1,23…" reads as another number: numbers fold onto a second line.
        t.add_column(header, justify=justify, min_width=min_width,  # type: ignore[arg-type]
                     overflow="fold" if justify == "right" else "ellipsis")
    for row in rows:
        # Plain strings are data (tool names, paths, raw lines), never Rich markup.
        t.add_row(*row)
    return t


#: From here on (about 31 years) a latency is shown as 1.7e+308: the schema accepts any
#: finite latency, and a bogus one printed in full is hundreds of digits wrapping the table.
MS_SCIENTIFIC = 1e12


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= MS_SCIENTIFIC:
        return f"{value:.3g}"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def fmt_int(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"
