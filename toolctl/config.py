"""Where things live: the store path and per-user directories.

Precedence for the store: ``--db PATH`` > ``TOOLCTL_DB`` > the per-user data file
(``$XDG_DATA_HOME/toolctl/toolctl.duckdb``, default ``~/.local/share/toolctl/``;
``%LOCALAPPDATA%\\toolctl`` on Windows, ``~/Library/Application Support/toolctl`` on macOS).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DB_ENV = "TOOLCTL_DB"
DB_FILENAME = "toolctl.duckdb"


def user_data_dir() -> Path:
    """The per-user directory for toolctl's data (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "toolctl"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "toolctl"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "toolctl"


def resolve_db_path(cli_value: str | os.PathLike | None = None) -> Path:
    """The store file to use: the CLI option, else ``TOOLCTL_DB``, else the per-user file."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    return user_data_dir() / DB_FILENAME
