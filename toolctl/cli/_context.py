"""Per-invocation state shared by the commands: where the store is and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolctl.config import resolve_db_path


@dataclass
class State:
    db_option: str | None = None

    @property
    def db_path(self) -> Path:
        return resolve_db_path(self.db_option)

    def open_write(self):
        from toolctl.store import Store

        return Store.open(self.db_path, write=True)

    def open_read(self):
        from toolctl.store import Store

        return Store.open(self.db_path, write=False)
