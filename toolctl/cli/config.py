"""`toolctl config …`: the effective configuration and where each value came from."""

from __future__ import annotations

from typing import Annotated

import typer

from toolctl.cli._output import DocFormat, print_json, stdout, table

app = typer.Typer(help="Configuration: toolctl.toml, environment and flags.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context,
         fmt: Annotated[DocFormat, typer.Option("--format", "-f", help="Output format.")] = DocFormat.table) -> None:
    """Print the effective configuration: each value and its source (flag > env > file > default).

    Example: toolctl --config ./toolctl.toml config show
    """
    doc = ctx.obj.settings.to_dict()
    if fmt is DocFormat.json:
        print_json(doc)
        return
    where = (f"{doc['config_file']} ({doc['config_file_origin']})" if doc["config_file"]
             else "none found (./toolctl.toml, then the per-user toolctl.toml)")
    stdout().print(f"configuration file: {where}", highlight=False)
    body = [(name, s["value"] if s["value"] is not None else "–", s["source"])
            for name, s in doc["settings"].items()]
    stdout().print(table(None, [("setting", "left"), ("value", "left"), ("source", "left")], body))
