"""The CLI's byte-size options: bytes or a number with a unit (toolctl.sizes)."""

from __future__ import annotations

from typing import Any, Callable

from toolctl.sizes import format_size, parse_size


def byte_size(minimum: int = 1, maximum: int | None = None) -> Callable[[Any], int]:
    """A Typer ``parser=`` for a ``--…-bytes`` option: ``16777216``, ``64MiB``, ``1GB``, at
    least ``minimum`` bytes. A bad value is a usage error (exit 2): Typer validates option
    values with pydantic, so the message travels as a PydanticCustomError (a plain
    ValueError would be shown as "Value error, …"). ``maximum``: for a size that is
    allocated, not just compared against (a read of that many bytes)."""

    def parse(value: Any) -> int:
        from pydantic_core import PydanticCustomError

        try:
            n = value if isinstance(value, int) else parse_size(str(value))
        except ValueError as exc:
            raise PydanticCustomError("byte_size", "{why}", {"why": str(exc)}) from None
        if n < minimum:
            why = f"{value} is below the minimum of {format_size(minimum)} ({minimum} bytes)"
            raise PydanticCustomError("byte_size", "{why}", {"why": why})
        if maximum is not None and n > maximum:
            why = f"{value} is above the maximum of {format_size(maximum)} ({maximum} bytes)"
            raise PydanticCustomError("byte_size", "{why}", {"why": why})
        return n

    return parse


def size_option(minimum: int, default: int, help: str, maximum: int | None = None) -> Any:
    """``typer.Option`` for a byte size: SIZE metavar, the default shown with its unit."""
    import typer

    return typer.Option(help=f"{help} Bytes, or a number with a unit (64MiB, 1GB).",
                        parser=byte_size(minimum, maximum),
                        metavar="SIZE", show_default=format_size(default))
