"""Per-invocation state shared by the commands: where the store is and how to reach it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path



@dataclass
class State:
    db_option: str | None = None
    config_option: str | None = None
    _settings: object = None

    @property
    def settings(self):
        """The effective configuration (toolctl.config.Settings): flag > env > file > default."""
        if self._settings is None:
            from toolctl.config import load_settings

            self._settings = load_settings(self.config_option, {"store.path": self.db_option})
        return self._settings

    def setting(self, name: str):
        return self.settings.get(name)

    @property
    def db_path(self) -> Path:
        return Path(self.setting("store.path")).expanduser()

    def open_write(self):
        from toolctl.store import Store

        return Store.open(self.db_path, write=True)

    def server(self):
        """The `toolctl serve` to talk to (toolctl.remote.ServerInfo), or None: the configured
        collector URL ($TOOLCTL_URL or collector.url; must answer), else the running server
        holding this store (its discovery file)."""
        from toolctl.remote import find_server, find_server_at

        from toolctl.remote import load_token

        url = self.setting("collector.url")
        info = (find_server_at(url, origin=self.settings.values["collector.url"].source) if url
                else find_server(self.db_path))
        if info is not None:
            info.token = load_token(self.setting("collector.token_file"))
        return info

    def _remote(self, info):
        from toolctl.remote import RemoteStore

        return RemoteStore(info, self.db_path)

    def remote_server(self):
        """The server to send operations to, or None (checks the discovery file cheaply first)."""
        from toolctl.remote import discovery_path

        if self.setting("collector.url") or discovery_path(self.db_path).exists():
            return self.server()
        return None

    def open_read(self):
        """A Store, or a RemoteStore when `toolctl serve` holds the file (run reads via toolctl.api)."""
        from toolctl.store import Store

        info = self.remote_server()
        if info is not None:
            return self._remote(info)
        return Store.open(self.db_path, write=False)

    def open_write_or_remote(self):
        """A Store opened for writing, or a RemoteStore when `toolctl serve` holds the file
        (run writes via toolctl.api.write: the server's writer commits them)."""
        info = self.remote_server()
        if info is not None:
            return self._remote(info)
        return self.open_write()
