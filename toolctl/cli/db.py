"""`toolctl db …`: where the store is and what is in it."""

from __future__ import annotations

import typer

app = typer.Typer(help="The store: its location and upkeep.", no_args_is_help=True)


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the store file in use (--db > $TOOLCTL_DB > per-user data file).

    Example: toolctl db path
    """
    typer.echo(str(ctx.obj.db_path))
