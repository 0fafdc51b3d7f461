"""The error hierarchy of the library.

The library raises these; it never prints or exits. The CLI turns them into
``Error: …`` / ``Hint: …`` on stderr and the exit code they carry, in one place
(``toolctl.cli._output.fail``). Exit codes are a contract with scripts and are
documented in the README.
"""

from __future__ import annotations

# Exit codes shared by every command (the gate adds its own verdict codes).
EXIT_OK = 0
EXIT_ERROR = 1  # fatal: unreadable input, unreachable collector, bad environment
EXIT_USAGE = 2  # bad option or argument (also what Click uses)
EXIT_PARTIAL = 3  # ingest stored the valid lines but rejected some
EXIT_STORE = 4  # the store is busy, corrupt, or of an incompatible schema


class ToolctlError(Exception):
    """Base class: a message for the operator, a hint on what to do, a stable code."""

    exit_code = EXIT_ERROR
    code = "error"

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ToolctlError):
    exit_code = EXIT_USAGE
    code = "usage"


class PrerequisiteError(UsageError):
    """An option needs software this machine lacks (``--engine spark``: pyspark, a Java runtime).

    A usage error (exit 2) like any option this installation cannot honour: the command never
    started its work, and the hint says what to install.
    """

    code = "prerequisite"


class InputError(ToolctlError):
    """An input file or stream cannot be read at all (a bad *line* is a reject, not this)."""

    code = "input"


class StoreError(ToolctlError):
    exit_code = EXIT_STORE
    code = "store"


class StoreBusyError(StoreError):
    code = "store_busy"


class SchemaVersionError(StoreError):
    code = "schema_version"


class LakeFileError(StoreError):
    """A file of a Parquet lake cannot be read (truncated, altered, not Parquet): the data
    being read is damaged, as a corrupt store is (exit 4; the gate's verdict ``error``)."""

    code = "lake_file"


class LakeError(ToolctlError):
    """The lake directory is missing, not a toolctl lake, or of an unknown version."""

    code = "lake"


class RemoteError(ToolctlError):
    """The running collector could not answer a request made on the CLI's behalf."""

    code = "remote"
