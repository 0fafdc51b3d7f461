"""The toolctl command line: this module only wires the command groups together."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from toolctl.cli import audit as audit_cmd
from toolctl.cli import config as config_cmd
from toolctl.cli import db as db_cmd
from toolctl.cli import ingest as ingest_cmd
from toolctl.cli import lake as lake_cmd
from toolctl.cli import serve as serve_cmd
from toolctl.cli import stats as stats_cmd
from toolctl.cli import baseline as baseline_cmd
from toolctl.cli import gate as gate_cmd
from toolctl.cli import runbook as runbook_cmd
from toolctl.cli import top as top_cmd
from toolctl.cli._context import State
from toolctl.errors import ToolctlError, UsageError

app = typer.Typer(
    name="toolctl",
    help="Observability and audit for LLM-agent tool calls: ingest logs and spans, "
    "see error rates and latency, audit calls, gate canaries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option("--db", metavar="PATH", help="Store file (default: $TOOLCTL_DB, else toolctl.toml's store.path, else the per-user data file)."),
    ] = None,
    config: Annotated[
        Optional[str],
        typer.Option("--config", metavar="FILE", help="Configuration file (default: $TOOLCTL_CONFIG, else ./toolctl.toml, else the per-user toolctl.toml)."),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option("--profile", help="Print where the command spent its time to stderr (also TOOLCTL_PROFILE=1; 2 adds DuckDB's operator profile)."),
    ] = False,
) -> None:
    ctx.obj = State(db_option=db, config_option=config)


ingest_cmd.register(app)
stats_cmd.register(app)
serve_cmd.register(app)
app.add_typer(db_cmd.app, name="db")
app.add_typer(config_cmd.app, name="config")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(lake_cmd.app, name="lake")
gate_cmd.register(app)
runbook_cmd.register(app)
baseline_cmd.register(app)
top_cmd.register(app)


def _run_app(argv: list[str] | None) -> None:
    """Run Typer without its standalone mode, so a command-line mistake reads like every other
    error: one ``Error:`` line and a ``Hint:`` (Click would print its usage block), exit 2."""
    # Click's classes, whether Typer vendors Click (>= 0.26) or depends on it.
    click_errors = {c.__name__: c for c in typer.BadParameter.__mro__}
    try:
        result = app(args=argv, prog_name="toolctl", standalone_mode=False)
    except click_errors["UsageError"] as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `toolctl db`: the group's help
            exc.show()
            raise SystemExit(exc.exit_code) from None
        command = _command_path(sys.argv[1:] if argv is None else argv)
        from toolctl.cli._output import printable

        sys.stderr.write(f"Error: {printable(exc.format_message())}\nHint: see `{command} --help`\n")
        raise SystemExit(exc.exit_code) from None
    except click_errors["ClickException"] as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        raise SystemExit(1) from None
    if isinstance(result, int) and result:  # typer.Exit(code) is returned, not raised, here
        raise SystemExit(result)


def _command_path(args: list[str]) -> str:
    """``toolctl audit search`` for ``--db x audit search --bogus``: the command named in
    ``args`` (Click's own context can be the group's when the parser stops early)."""
    command, path = typer.main.get_command(app), ["toolctl"]
    takes_value = {"--db", "--config"}
    i = 0
    while i < len(args) and hasattr(command, "commands"):
        token = args[i]
        if token in takes_value:
            i += 2
            continue
        if token.startswith("-"):
            i += 1
            continue
        if token not in command.commands:
            break
        command = command.commands[token]
        path.append(token)
        i += 1
    return " ".join(path)


def _refuse_undecodable(args: list[str]) -> None:
    """An argument whose bytes are not UTF-8 (Python hands them over as lone surrogates) can
    only be a path that exists: a name, version or filter like that would reach DuckDB,
    which cannot encode it, as a traceback."""
    import os

    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            if os.path.lexists(arg):
                continue
            shown = os.fsencode(arg).decode("utf-8", "backslashreplace")
            raise UsageError(f"argument '{shown}' is not valid UTF-8",
                             hint="names, versions and filters are UTF-8 text: retype it, or check "
                                  "the terminal's encoding (LANG, LC_ALL)") from None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: library errors become `Error: …` and their exit code."""
    from toolctl import profile
    from toolctl.cli._output import fail, flush_stdout, guard_stdout

    guard_stdout()  # `toolctl gate … | head -1` keeps the verdict's exit code
    args = sys.argv[1:] if argv is None else argv
    # Enabled before Typer parses anything, so the timeline starts at main(); the --profile
    # option itself is declared on the root callback (for --help and parsing).
    level = profile.env_level()
    if "--profile" in args[: args.index("--") if "--" in args else len(args)]:
        level = max(level, 1)
    if level:
        profile.enable(level)
    try:
        _refuse_undecodable(args)
        _run_app(argv)
    except ToolctlError as exc:
        fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        raise SystemExit(130)
    finally:
        flush_stdout()
        if profile.ENABLED:
            sys.stderr.write(profile.report())


def run() -> None:
    """The ``toolctl`` executable: ``main()``, then leave without tearing the interpreter down.

    After a command, Python's finalization frees every module and object one by one: ~50 ms
    of a 0.4 s `toolctl stats` (benchmarks/RESULTS.md), paid on every invocation for memory
    the kernel reclaims anyway. Exit handlers still run (logging, executors, Spark's gateway)
    and both streams are flushed; the store was closed by the command itself. Library use of
    ``main(argv)`` (tests) keeps the normal exit.
    """
    import atexit
    import os

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):  # SystemExit("message") prints it and exits 1, as Python does
        if code is not None:
            sys.stderr.write(f"{code}\n")
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

