"""Read operations shared by the CLI and ``toolctl serve``.

Each operation is a pydantic request model and a library function ``fn(store, request)``
returning JSON-ready data. The CLI calls ``read(store, name, request)`` with whatever
``State.open_read`` gave it: a local Store runs the function here; a ``RemoteStore``
(a collector holds the file) sends the request to the server, which runs the same
function through ``run_local``, so the results are identical.

Adding a command (audit, gate) is one line in ``READS``.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, Field

from toolctl.errors import UsageError


class RejectsQuery(BaseModel):
    """``toolctl rejects``: which rejected lines to list."""

    source: str | None = None
    limit: int = Field(100, ge=1)


def _stats(store: Any, query: Any) -> Any:
    from toolctl.metrics.stats import stats

    return stats(store, query)


def _rejects(store: Any, query: RejectsQuery) -> Any:
    from toolctl.metrics.rejects import list_rejects

    return list_rejects(store, source=query.source, limit=query.limit)


def _stats_model() -> type[BaseModel]:
    from toolctl.metrics.stats import StatsQuery

    return StatsQuery


#: name → (zero-argument getter of the request model, function(store, request)).
READS: dict[str, tuple[Callable[[], type[BaseModel]], Callable[[Any, Any], Any]]] = {
    "stats": (_stats_model, _stats),
    "rejects": (lambda: RejectsQuery, _rejects),
}


def request_model(name: str) -> type[BaseModel]:
    if name not in READS:
        raise UsageError(f"unknown read operation {name!r}", hint="one of: " + ", ".join(READS))
    return READS[name][0]()


def run_local(store: Any, name: str, request: BaseModel) -> Any:
    """Run a registered read operation against an open Store."""
    request_model(name)
    return READS[name][1](store, request)


def read(store: Any, name: str, request: BaseModel) -> Any:
    """Run a read operation locally or, if ``store`` is a RemoteStore, on the server."""
    from toolctl.remote import RemoteStore

    if isinstance(store, RemoteStore):
        return store.read(name, request)
    return run_local(store, name, request)
