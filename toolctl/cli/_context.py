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

    def server(self):
        """The running `toolctl serve` holding this store (toolctl.remote.ServerInfo), or None."""
        from toolctl.remote import find_server

        return find_server(self.db_path)

    def open_read(self):
        """A Store, or a RemoteStore when `toolctl serve` holds the file (run reads via toolctl.api)."""
        from toolctl.remote import RemoteStore, discovery_path
        from toolctl.store import Store

        if discovery_path(self.db_path).exists():
            info = self.server()
            if info is not None:
                return RemoteStore(info, self.db_path)
        return Store.open(self.db_path, write=False)

    def open_write_or_remote(self):
        """A Store opened for writing, or a RemoteStore when `toolctl serve` holds the file
        (run writes via toolctl.api.write: the server's writer commits them)."""
        from toolctl.remote import RemoteStore, discovery_path

        if discovery_path(self.db_path).exists():
            info = self.server()
            if info is not None:
                return RemoteStore(info, self.db_path)
        return self.open_write()
