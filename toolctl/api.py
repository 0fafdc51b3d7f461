"""Read operations shared by the CLI and ``toolctl serve``.

Each operation is a pydantic request model and a library function ``fn(store, request)``
returning JSON-ready data. The CLI calls ``read(store, name, request)`` with whatever
``State.open_read`` gave it: a local Store runs the function here; a ``RemoteStore``
(a collector holds the file) sends the request to the server, which runs the same
function through ``run_local``, so the results are identical.

Adding a command is one line in ``READS``. Operations that write (the gate persists its
history, runbook runs are ledger entries) are in ``WRITES``: locally they run on a store
opened for writing; on the server they go through its writer queue, so their commit is
the collector's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Callable

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from toolctl.errors import UsageError


class Request(BaseModel):
    """A read or write operation's parameters. Validators are built on first use, not at
    import: a command uses one of these models, and building all of them at import made
    this module's own import time ~19 ms instead of ~10 (every command imports it)."""

    model_config = ConfigDict(defer_build=True)


#: ``--limit``: at least 1; beyond SQL's BIGINT (2**63 - 1) it can only mean every row, so
#: it is taken as that (DuckDB's LIMIT refused it with a conversion error, a traceback).
Limit = Annotated[int, Field(ge=1), AfterValidator(lambda n: min(n, 2 ** 63 - 1))]


class RejectsQuery(Request):
    """``toolctl rejects``: which rejected lines to list."""

    source: str | None = None
    limit: Limit = 100


def _stats(store: Any, query: Any) -> Any:
    from toolctl.metrics.stats import stats

    return stats(store, query)


def _live(store: Any, query: Any) -> Any:
    from toolctl.metrics.live import live_snapshot

    return live_snapshot(store, query)


def _live_model() -> type[BaseModel]:
    from toolctl.metrics.live import LiveQuery

    return LiveQuery


def _histogram(store: Any, query: Any) -> Any:
    from toolctl.metrics.histogram import latency_histogram

    return latency_histogram(store, query)


def _histogram_model() -> type[BaseModel]:
    from toolctl.metrics.histogram import HistogramQuery

    return HistogramQuery


def _rejects(store: Any, query: RejectsQuery) -> Any:
    from toolctl.metrics.rejects import list_rejects

    return list_rejects(store, source=query.source, limit=query.limit)


def _stats_model() -> type[BaseModel]:
    from toolctl.metrics.stats import StatsQuery

    return StatsQuery


def _event_filter_type() -> Any:
    from toolctl.audit.lookups import EventFilter

    return EventFilter


class AuditSearch(Request):
    """``toolctl audit search``: an EventFilter (pydantic validates the dataclass) and a limit."""

    filter: _event_filter_type()  # type: ignore[valid-type]
    limit: Limit = 100


class AuditExport(Request):
    filter: _event_filter_type()  # type: ignore[valid-type]
    fmt: str
    path: str  # absolute: the server writes it when it holds the store (same host)


class GateHistory(Request):
    """``toolctl gate history``: past evaluations, newest first."""

    baseline: str | None = None
    candidate: str | None = None
    limit: Limit = 50


class AuditDuplicates(Request):
    tool: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Limit = 100


class AuditId(Request):
    id: str


class AuditLog(Request):
    kind: str | None = None
    limit: Limit = 100


class NoArgs(Request):
    pass


def jsonable(value: Any) -> Any:
    """The value as it travels over HTTP, so a local read and a read answered by
    ``toolctl serve`` give byte-identical output (rules: ``toolctl.jsonio``)."""
    from toolctl.jsonio import jsonable as read_back

    return read_back(value)


def _audit_search(store: Any, q: AuditSearch) -> Any:
    from toolctl.audit.lookups import search_events

    return jsonable(search_events(store, q.filter, limit=q.limit))


def _audit_export(store: Any, q: AuditExport) -> Any:
    from toolctl.audit.lookups import export_events

    return export_events(store, q.filter, fmt=q.fmt, path=q.path)


def _audit_duplicates(store: Any, q: AuditDuplicates) -> Any:
    from toolctl.audit.lookups import duplicate_executions

    return jsonable(duplicate_executions(store, tool=q.tool, since=q.since, until=q.until, limit=q.limit))


def _gate_history(store: Any, q: GateHistory) -> Any:
    from toolctl.gate.history import history

    return jsonable(history(store, baseline=q.baseline, candidate=q.candidate, limit=q.limit))


def _audit_call(store: Any, q: AuditId) -> Any:
    from toolctl.audit.timeline import call_timeline

    return jsonable(call_timeline(store, q.id))


def _audit_trace(store: Any, q: AuditId) -> Any:
    from toolctl.audit.timeline import trace_timeline

    return jsonable(trace_timeline(store, q.id))


def _audit_log(store: Any, q: AuditLog) -> Any:
    from toolctl.audit.ledger import list_entries

    return jsonable(list_entries(store, kind=q.kind, limit=q.limit))


def _audit_verify(store: Any, q: NoArgs) -> Any:
    from toolctl.audit.ledger import verify

    return verify(store).to_dict()


class DbPrune(Request):
    """``toolctl db prune``: remove whole batches whose data is all older than ``cutoff``."""

    cutoff: datetime
    older_than: str | None = None
    allow_unexported: bool = False  # remove rows a lake of the store has not received yet


class DbBackup(Request):
    path: str  # absolute: the server writes it when it holds the store (same host)
    force: bool = False


def _db_info(store: Any, q: NoArgs) -> Any:
    from toolctl.store.upkeep import store_info

    return jsonable(store_info(store))


def _db_prune(store: Any, q: DbPrune, dry_run: bool = False) -> Any:
    from toolctl.store.upkeep import prune_store

    return jsonable(prune_store(store, cutoff=q.cutoff, dry_run=dry_run, older_than=q.older_than,
                                allow_unexported=q.allow_unexported))


def _db_backup(store: Any, q: DbBackup) -> Any:
    from pathlib import Path

    from toolctl.store.upkeep import backup_store

    return jsonable(backup_store(store, Path(q.path), force=q.force))


class LakeExport(Request):
    """``toolctl lake export``: the lake directory (absolute) and an optional window."""

    lake: str
    since: datetime | None = None
    until: datetime | None = None


class LakeCompact(Request):
    lake: str
    before: datetime | None = None


class LakeVerify(Request):
    lake: str


def _lake_export(store: Any, q: LakeExport) -> Any:
    from toolctl.lake.export import export_pending

    return export_pending(store, q.lake, since=q.since, until=q.until).to_dict()


def _lake_compact(store: Any, q: LakeCompact) -> Any:
    from toolctl.lake.compact import compact

    return compact(store, q.lake, before=q.before).to_dict()


def _lake_verify(store: Any, q: LakeVerify) -> Any:
    from toolctl.lake.verify import verify_lake

    return verify_lake(store, q.lake)


class BaselineName(Request):
    """``toolctl baseline show|delete NAME``."""

    name: str


class BaselineSave(Request):
    """``toolctl baseline save``: the window and version to snapshot under ``name``."""

    name: str
    version: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    now: datetime
    replace: bool = False


class Regress(Request):
    """``toolctl regress``: a saved baseline against [since, until) of the store, or of a
    Parquet lake (``lake`` absolute: the server reads it when it holds the store, same host)."""

    baseline: str
    since: datetime
    until: datetime
    lake: str | None = None
    engine: str = "duckdb"
    spark_master: str | None = None


def _baseline_list(store: Any, q: NoArgs) -> Any:
    from toolctl.gate.baselines import list_baselines

    return jsonable(list_baselines(store))


def _baseline_show(store: Any, q: BaselineName) -> Any:
    from toolctl.gate.baselines import show_baseline

    return jsonable(show_baseline(store, q.name))


def _baseline_save(store: Any, q: BaselineSave) -> Any:
    from toolctl.gate.baselines import save_baseline

    return jsonable(save_baseline(store, q.name, version=q.version, since=q.since, until=q.until,
                                  now=q.now, replace=q.replace))


def _baseline_delete(store: Any, q: BaselineName) -> Any:
    from toolctl.gate.baselines import delete_baseline

    delete_baseline(store, q.name)
    return {"deleted": q.name}


def _regress(store: Any, q: Regress) -> Any:
    from toolctl.gate.baselines import regress

    if q.lake is None:
        return jsonable(regress(store, q.baseline, since=q.since, until=q.until))
    from toolctl.engines import open_source

    with open_source(q.engine, q.lake, q.spark_master) as data:  # the current window's calls
        return jsonable(regress(store, q.baseline, since=q.since, until=q.until, data=data))


#: name → (zero-argument getter of the request model, function(store, request)).
READS: dict[str, tuple[Callable[[], type[BaseModel]], Callable[[Any, Any], Any]]] = {
    "stats": (_stats_model, _stats),
    "live": (_live_model, _live),
    "latency_histogram": (_histogram_model, _histogram),
    "rejects": (lambda: RejectsQuery, _rejects),
    "audit_search": (lambda: AuditSearch, _audit_search),
    "audit_export": (lambda: AuditExport, _audit_export),
    "audit_duplicates": (lambda: AuditDuplicates, _audit_duplicates),
    "gate_history": (lambda: GateHistory, _gate_history),
    "audit_call": (lambda: AuditId, _audit_call),
    "audit_trace": (lambda: AuditId, _audit_trace),
    "audit_log": (lambda: AuditLog, _audit_log),
    "audit_verify": (lambda: NoArgs, _audit_verify),
    "db_info": (lambda: NoArgs, _db_info),
    "db_prune_plan": (lambda: DbPrune, lambda store, q: _db_prune(store, q, dry_run=True)),
    "lake_verify": (lambda: LakeVerify, _lake_verify),
    "baseline_list": (lambda: NoArgs, _baseline_list),
    "baseline_show": (lambda: BaselineName, _baseline_show),
    "regress": (lambda: Regress, _regress),
}


def _gate_model() -> type[BaseModel]:
    from toolctl.gate.runbook import Runbook

    class GateOp(Request):
        """``toolctl gate``: the runbook travels whole (with its content hash)."""

        baseline: str
        candidate: str
        runbook: Runbook
        since: datetime | None = None
        until: datetime | None = None
        tools: list[str] | None = None
        now: datetime | None = None

    return GateOp


def _gate(store: Any, q: Any) -> Any:
    from toolctl.gate import GateRequest, run_gate

    return jsonable(run_gate(store, GateRequest(**dict(q))))


def _runbook_model() -> type[BaseModel]:
    from toolctl.gate.runbook import Runbook

    class RunbookOp(Request):
        """``toolctl runbook run``: a single-window runbook over [since, until)."""

        runbook: Runbook
        since: datetime | None = None
        until: datetime | None = None
        tools: list[str] | None = None
        now: datetime | None = None

    return RunbookOp


def _runbook_run(store: Any, q: Any) -> Any:
    from toolctl.audit.ledger import record_event
    from toolctl.gate import run_runbook

    with store.transaction():  # the run and its ledger entry commit together
        report = jsonable(run_runbook(store, q.runbook, since=q.since, until=q.until,
                                      tools=q.tools, now=q.now))
        record_event(store, "runbook_run", {
            "runbook": q.runbook.name, "runbook_hash": q.runbook.content_hash,
            "since": report.get("since"), "until": report.get("until"), "status": report["status"],
            "checks": {c["name"]: c["outcome"] for c in report["checks"]}})
    return report


#: Operations that write: name → (getter of the request model, function(store, request)).
WRITES: dict[str, tuple[Callable[[], type[BaseModel]], Callable[[Any, Any], Any]]] = {
    "gate": (_gate_model, _gate),
    "runbook_run": (_runbook_model, _runbook_run),
    "db_prune": (lambda: DbPrune, _db_prune),
    "db_backup": (lambda: DbBackup, _db_backup),
    "lake_export": (lambda: LakeExport, _lake_export),
    "lake_compact": (lambda: LakeCompact, _lake_compact),
    "baseline_save": (lambda: BaselineSave, _baseline_save),
    "baseline_delete": (lambda: BaselineName, _baseline_delete),
}


def _entry(kind: str, name: str) -> tuple[Callable[[], type[BaseModel]], Callable[[Any, Any], Any]]:
    registry = READS if kind == "read" else WRITES
    if name not in registry:
        raise UsageError(f"unknown {kind} operation {name!r}", hint="one of: " + ", ".join(registry))
    return registry[name]


def request_model(name: str, kind: str = "read") -> type[BaseModel]:
    """The request model of a registered operation (``kind``: read or write)."""
    return _entry(kind, name)[0]()


def run_local(store: Any, name: str, request: BaseModel, kind: str = "read") -> Any:
    """Run a registered operation against an open Store (opened for writing for writes)."""
    return _entry(kind, name)[1](store, request)


def call(store: Any, name: str, request: BaseModel, kind: str) -> Any:
    """Run an operation locally or, if ``store`` is a RemoteStore, on the server."""
    from toolctl.remote import RemoteStore

    if isinstance(store, RemoteStore):
        return store.call(kind, name, request)
    return run_local(store, name, request, kind)


def read(store: Any, name: str, request: BaseModel) -> Any:
    return call(store, name, request, "read")


def write(store: Any, name: str, request: BaseModel) -> Any:
    return call(store, name, request, "write")
