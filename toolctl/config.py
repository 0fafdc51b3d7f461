"""Where things live and the defaults an operator sets once: the store path, per-user
directories and the configuration file ``toolctl.toml``.

Precedence for every setting: command-line flag > environment variable > configuration file
> built-in default. The configuration file is the first of: ``--config FILE``,
``$TOOLCTL_CONFIG``, ``./toolctl.toml`` (the working directory), the per-user file
(``$XDG_CONFIG_HOME/toolctl/toolctl.toml``, default ``~/.config/toolctl/``;
``%APPDATA%\\toolctl`` on Windows, ``~/Library/Application Support/toolctl`` on macOS).
Relative paths inside a file are relative to the file's directory.

The store without a flag, variable or file setting: the per-user data file
(``$XDG_DATA_HOME/toolctl/toolctl.duckdb``, default ``~/.local/share/toolctl/``;
``%LOCALAPPDATA%\\toolctl`` on Windows, ``~/Library/Application Support/toolctl`` on macOS).

An example::

    [store]
    path = "data/toolctl.duckdb"

    [gate]
    runbook = "runbooks/checkout.yaml"   # default --runbook of `toolctl gate`

    [redaction]
    rules = "redaction.toml"             # default --redaction-rules of `toolctl ingest`

    [collector]
    url = "http://collector.internal:4318"  # talk to this `toolctl serve` instead of the file
    token_file = "~/.config/toolctl/token"
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolctl.errors import UsageError

DB_ENV = "TOOLCTL_DB"
DB_FILENAME = "toolctl.duckdb"
CONFIG_ENV = "TOOLCTL_CONFIG"
CONFIG_FILENAME = "toolctl.toml"
URL_ENV = "TOOLCTL_URL"
#: What collector.url accepts, from the file or from $TOOLCTL_URL: an http(s) URL with a host
#: (the scheme in any case, RFC 3986), checked whole (``re.fullmatch``) and by is_collector_url.
URL_PATTERN = r"(?i:https?)://[^\s/]+(/\S*)?"
URL_PROBLEM = "not an http(s):// URL (e.g. http://collector.internal:4318)"
RUNBOOK_ENV = "TOOLCTL_RUNBOOK"
RULES_ENV = "TOOLCTL_REDACTION_RULES"  # read by toolctl.audit.redact too
TOKEN_ENV = "TOOLCTL_TOKEN"
TOKEN_FILE_ENV = "TOOLCTL_TOKEN_FILE"


def user_data_dir() -> Path:
    """The per-user directory for toolctl's data (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "toolctl"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "toolctl"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "toolctl"


def user_config_dir() -> Path:
    """The per-user directory for toolctl's configuration (not created here)."""
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / "toolctl"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "toolctl"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "toolctl"


def is_collector_url(value: str) -> bool:
    """Whether ``value`` is a collector URL the client can use: URL_PATTERN, a host, and a port
    (if any) that is a number of 0-65535 (``http://x:abc`` or ``http://[::1`` match the
    pattern and would fail inside httpx with a traceback)."""
    from urllib.parse import urlsplit

    if not re.fullmatch(URL_PATTERN, value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a port that is not 0-65535)
    except ValueError:
        return False
    return bool(parts.hostname)


# -- the file ---------------------------------------------------------------------------------
def _models() -> Any:
    """The pydantic models of the file (built lazily: `toolctl --help` must stay light)."""
    from pydantic import BaseModel, ConfigDict, Field

    class Section(BaseModel):
        model_config = ConfigDict(extra="forbid")

    # A path: not empty, no NUL (the OS would cut it there and use another file).
    path_field = {"min_length": 1, "pattern": r"^[^\x00]+$"}

    class StoreSection(Section):
        path: str | None = Field(None, **path_field)

    class GateSection(Section):
        runbook: str | None = Field(None, **path_field)

    class RedactionSection(Section):
        rules: str | None = Field(None, **path_field)

    class CollectorSection(Section):
        url: str | None = None  # checked by is_collector_url in read_config_file
        token_file: str | None = Field(None, **path_field)

    class ConfigFile(Section):
        store: StoreSection = StoreSection()
        gate: GateSection = GateSection()
        redaction: RedactionSection = RedactionSection()
        collector: CollectorSection = CollectorSection()

    return ConfigFile


def _line_of(text: str, loc: tuple) -> int | None:
    """The line (1-based) of ``[section]`` / ``key =`` a pydantic error location points at."""
    lines = text.splitlines()
    section = str(loc[0]) if loc else None
    key = str(loc[1]) if len(loc) > 1 else None
    start = 0
    for i, line in enumerate(lines):
        if line.strip().replace(" ", "") == f"[{section}]":
            start = i
            if key is None:
                return i + 1
            break
    else:
        if key is None:
            start = 0
    for i in range(start, len(lines)):
        bare = lines[i].split("=", 1)[0].strip().strip('"')
        if bare in (key, f"{section}.{key}") or (key is None and bare == section):
            return i + 1
    return start + 1 if start else None


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse and validate a configuration file; returns {section: {key: value}} with the keys
    the file sets (relative paths resolved against the file's directory).

    Raises UsageError (exit 2) naming the file and line for unreadable TOML, unknown keys
    and values of the wrong type.
    """
    import tomllib

    from pydantic import ValidationError

    try:
        text = path.read_text("utf-8-sig")  # Windows editors save UTF-8 with a byte-order mark
    except OSError as exc:
        raise UsageError(f"cannot read configuration file {path}: {exc.strerror}",
                         hint=f"fix the path given in --config or ${CONFIG_ENV}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1  # exc.object: the bytes after a BOM
        raise UsageError(f"{path}:{line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x})",
                         hint="TOML files are UTF-8 text: save it as UTF-8") from None
    try:
        doc = tomllib.loads(text)
        parsed = _models().model_validate(doc)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}",
                         hint="fix the syntax (quotes around strings, [section] headers)") from None
    except RecursionError:  # thousands of nested arrays: reading or validating them
        raise UsageError(f"{path}: nested too deeply to read",
                         hint="settings are plain values in [section] tables (see docs/config.md)") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        line = _line_of(text, loc)
        where = f"{path}:{line}" if line else str(path)
        name = ".".join(str(p) for p in loc)
        what = {"extra_forbidden": "unknown setting",
                "model_type": "must be a [section] table of settings",
                "string_type": f"must be a string, not {_toml_type(err.get('input'))}",
                "string_too_short": "must not be empty"}.get(err["type"], err["msg"])
        if err["type"] == "string_pattern_mismatch":
            what = "a path cannot contain a NUL character"
        raise UsageError(f"{where}: {name}: {what}", hint=_FILE_HINT) from None
    found = parsed.model_dump(exclude_unset=True, exclude_none=True)
    url = found.get("collector", {}).get("url")
    if url is not None and not is_collector_url(url):
        line = _line_of(text, ("collector", "url"))
        raise UsageError(f"{path}:{line}: collector.url: {URL_PROBLEM}" if line
                         else f"{path}: collector.url: {URL_PROBLEM}", hint=_FILE_HINT)
    base = path.parent
    for section, key in (("store", "path"), ("redaction", "rules"), ("collector", "token_file")):
        value = found.get(section, {}).get(key)
        if value is not None:
            found[section][key] = str(_relative_to(value, base))
    runbook = found.get("gate", {}).get("runbook")
    if runbook is not None and ("/" in runbook or runbook.endswith((".yaml", ".yml"))):
        found["gate"]["runbook"] = str(_relative_to(runbook, base))  # a file, not a built-in name
    return found


_FILE_HINT = ("settings: store.path, gate.runbook, redaction.rules, collector.url, "
              "collector.token_file (see docs/config.md)")


def _toml_type(value: Any) -> str:
    """How a TOML value's type is called, for an error message."""
    import datetime as dt

    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (dict, "a table"),
                       (list, "an array"), ((dt.datetime, dt.date, dt.time), "a date/time")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _relative_to(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def find_config_file(option: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The configuration file in use and why: (path, "--config" | "$TOOLCTL_CONFIG" |
    "working directory" | "user config dir"), or (None, "none"). A file named by the flag
    or the variable must exist (UsageError otherwise)."""
    if option is not None and not str(option).strip():
        # `--config "$UNSET"` must not quietly mean ./toolctl.toml or the per-user file.
        raise UsageError("--config is empty", hint=f"give --config a file, or leave the option out to "
                         f"use ${CONFIG_ENV}, ./{CONFIG_FILENAME} or the per-user file")
    for value, origin in ((option, "--config"), (os.environ.get(CONFIG_ENV), f"${CONFIG_ENV}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise UsageError(f"configuration file {path} (from {origin}) does not exist",
                                 hint=f"fix the path, or unset it to use ./{CONFIG_FILENAME}")
            return path, origin
    local = Path.cwd() / CONFIG_FILENAME
    if local.is_file():
        return local, "working directory"
    user = user_config_dir() / CONFIG_FILENAME
    if user.is_file():
        return user, "user config dir"
    return None, "none"


@dataclass
class Setting:
    value: Any
    source: str  # "--flag", "$VAR", "config file <path>", "default"


@dataclass
class Settings:
    """The effective configuration of one invocation, each value with where it came from."""

    config_path: Path | None = None
    config_origin: str = "none"
    values: dict[str, Setting] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.values[name].value

    def to_dict(self) -> dict:
        return {"config_file": str(self.config_path) if self.config_path else None,
                "config_file_origin": self.config_origin,
                "settings": {k: {"value": None if s.value is None else str(s.value), "source": s.source}
                             for k, s in self.values.items()}}


#: setting -> (config file section, key, environment variable, flag that overrides it).
SETTINGS = {
    "store.path": ("store", "path", DB_ENV, "--db"),
    "gate.runbook": ("gate", "runbook", RUNBOOK_ENV, "--runbook"),
    "redaction.rules": ("redaction", "rules", RULES_ENV, "--redaction-rules"),
    "collector.url": ("collector", "url", URL_ENV, None),
    "collector.token_file": ("collector", "token_file", TOKEN_FILE_ENV, "--token-file"),
}


def load_settings(config_option: str | os.PathLike | None = None,
                  flags: dict[str, Any] | None = None) -> Settings:
    """Resolve every setting: flag > environment > configuration file > default.

    ``flags`` maps setting names (keys of SETTINGS) to values given on the command line.
    Raises UsageError for a missing or invalid configuration file.
    """
    flags = flags or {}
    path, origin = find_config_file(config_option)
    found = read_config_file(path) if path else {}
    settings = Settings(config_path=path, config_origin=origin)
    defaults = {"store.path": user_data_dir() / DB_FILENAME, "gate.runbook": "canary-promotion"}
    for name, (section, key, env, flag) in SETTINGS.items():
        if isinstance(flags.get(name), str) and not flags[name].strip():
            # `--db "$UNSET"` must not quietly mean the per-user store.
            raise UsageError(f"{flag or name} is empty", hint=f"give {flag or name} a value, or leave the "
                             f"option out to use ${env}, the configuration file or the default")
        if flags.get(name):
            settings.values[name] = Setting(flags[name], flag or "flag")
        elif os.environ.get(env):
            if name == "collector.url" and not is_collector_url(os.environ[env]):
                raise UsageError(f"${env}: {URL_PROBLEM}: {os.environ[env]!r}",
                                 hint=f"fix ${env}, or unset it to use the store file")
            settings.values[name] = Setting(os.environ[env], f"${env}")
        elif key in found.get(section, {}):
            settings.values[name] = Setting(found[section][key], f"config file {path}")
        else:
            settings.values[name] = Setting(defaults.get(name), "default")
    if os.environ.get(TOKEN_ENV):  # a token given directly wins over any token file
        settings.values["collector.token_file"] = Setting(None, f"${TOKEN_ENV} (token given directly)")
    return settings


def resolve_db_path(cli_value: str | os.PathLike | None = None) -> Path:
    """The store file to use: the CLI option, else ``TOOLCTL_DB``, else the configuration
    file's ``store.path``, else the per-user file."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env).expanduser()
    return Path(load_settings().get("store.path")).expanduser()
