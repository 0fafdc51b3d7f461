"""Timelines: one tool call's attempts, one trace's spans, calls and events as a tree."""

from __future__ import annotations

import json
from typing import Any

from toolctl.audit import load_query
from toolctl.jsonio import loads_stored
from toolctl.errors import ToolctlError

STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


class NotFoundError(ToolctlError):
    """The id names nothing stored."""

    code = "not_found"


def _decode(rows: list[dict], *cols: str) -> list[dict]:
    for r in rows:
        for c in cols:
            if r.get(c) is not None:
                r[c] = loads_stored(r[c])
    return rows


#: What `audit call` lists of each tool span of the call (besides its attempts).
SPAN_LISTING = ("trace_id", "span_id", "name", "ts", "duration_ms", "status", "status_code", "attempt",
                "error_code", "http_status", "tool")


def summarise_call(call_id: str | None, events: list[dict]) -> dict:
    """Group one call's rows (events, tool spans as span_call_columns.sql maps them) into
    attempts, in the order given; the final envelope is the last row. Each stage says its
    ``origin``: ``event`` or ``span``."""
    attempts: dict[int, dict] = {}
    for e in events:
        a = attempts.setdefault(e["attempt"], {"attempt": e["attempt"], "stages": [],
                                               "latency_ms": 0.0, "status": None})
        a["stages"].append({**{k: e[k] for k in ("event_id", "ts", "stage", "status", "latency_ms",
                                                "error_code", "http_status", "retryable", "message")},
                            "origin": e.get("origin", "event")})
        a["latency_ms"] += e["latency_ms"]
        a["status"] = e["status"]
    ordered = [attempts[k] for k in sorted(attempts)]
    final = events[-1] if events else None
    used = sum(e["latency_ms"] for e in events)
    timeouts = [e["timeout_ms"] for e in events if e["timeout_ms"] is not None]
    budget = max(timeouts) if timeouts else None
    return {
        "call_id": call_id,
        "tool": final["tool"] if final else None,
        "idempotency_key": next((e["idempotency_key"] for e in events if e["idempotency_key"]), None),
        "attempts": ordered,
        "attempt_count": len(ordered),
        "final": None if final is None else {
            "status": final["status"], "error_code": final["error_code"],
            "http_status": final["http_status"], "message": final["message"], "data": final["data"]},
        "latency_used_ms": used,
        "timeout_budget_ms": budget,
        "budget_used_ratio": (used / budget) if budget else None,
    }


def call_timeline(store: Any, call_id: str) -> dict:
    """All attempts of one call: stages, latencies, the final envelope and timeout budget used.

    A call is what ``toolctl stats`` counts: its events and its tool spans (OTLP), each
    span a stage of its attempt (``origin: span``, no stage name). The tool spans are also
    listed under ``spans`` (SPAN_LISTING). The budget is the largest ``timeout_ms`` seen on
    the call; used = the sum of the latencies of all its rows. Raises NotFoundError when no
    event or tool span has this call id.
    """
    events = _decode(store.fetch_dicts(load_query("call_events"), {"call_id": call_id}), "data")
    spans = _span_calls(store.fetch_dicts(load_query("call_spans"), {"call_id": call_id}))
    if not events and not spans:
        hidden = store.fetch_dicts(load_query("call_hidden_span"), {"call_id": call_id})
        if hidden:  # its span is another call's JSON line's attempt (docs/spans.md)
            import shlex

            h = hidden[0]
            other = f" (call_id {h['call_id']!r})" if h["call_id"] is not None else ""
            see = f"`toolctl audit call {shlex.quote(h['call_id'])}` or " if h["call_id"] is not None else ""
            raise NotFoundError(f"call_id {call_id!r} has no attempt of its own: its tool span "
                                f"{h['trace_id']}:{h['span_id']} is recorded by JSON line {h['event_id']}{other}",
                                hint=f"see the attempt with {see}`toolctl audit trace {h['trace_id']}`")
        raise NotFoundError(f"no stored event or span has call_id {call_id!r}",
                            hint="check the id with `toolctl audit search --call-id ...`")
    doc = summarise_call(call_id, _in_call_order(events + spans))
    doc["spans"] = [{k: s[k] for k in SPAN_LISTING} for s in spans]
    return doc


def _span_calls(rows: list[dict]) -> list[dict]:
    """Tool spans as call rows: result decoded; attempt 1 when absent, as stats reads it."""
    for r in _decode(rows, "data"):
        r["attempt"] = r["attempt"] or 1
    return rows


def _in_call_order(rows: list[dict]) -> list[dict]:
    """Attempt, then stage in pipeline order (a span has none: last), then time and id."""
    return sorted(rows, key=lambda e: (e["attempt"], _stage_rank(e["stage"]), e["ts"], e["event_id"]))


def trace_timeline(store: Any, trace_id: str) -> dict:
    """The lifecycle of one trace as a tree.

    Returns {trace_id, spans: [every span, in tree order], calls: [calls not under a span],
    events, counts}. ``spans`` is flat: each span once, depth-first in start order, with its
    ``depth`` (0 for a root); a span of depth > 0 hangs under its ``parent_span_id``. Not
    nested, because a parent chain can be arbitrarily deep and JSON readers (orjson, Python's
    json, jq) stop at a few hundred levels. A call is what ``toolctl stats`` counts: events
    and tool spans grouped by call id (a row without one is a call of its own). A span
    carries under ``calls`` the calls whose first row (in call order) with a span of this
    trace names it: an event through its span_id, a tool span being that span; a span whose parent has not been received is a root with
    ``orphan: true``, the earliest span of a parent cycle one with ``cycle: true``. Ids are
    accepted in any case. Raises NotFoundError when nothing has this trace id.
    """
    tid = trace_id.strip().lower()
    spans = _decode(store.fetch_dicts(load_query("trace_spans"), {"trace_id": tid}), "attributes", "events")
    events = _decode(store.fetch_dicts(load_query("trace_events"), {"trace_id": tid}), "data")
    span_calls = _span_calls(store.fetch_dicts(load_query("trace_span_calls"), {"trace_id": tid}))
    if not spans and not events:
        raise NotFoundError(f"nothing stored has trace id {trace_id!r}",
                            hint="ids are hex; check with `toolctl audit search --trace-id ...`")
    nodes = {}
    for s in spans:
        s["status_name"] = STATUS_NAMES.get(s["status_code"], str(s["status_code"]))
        s["children"], s["calls"], s["orphan"], s["cycle"] = [], [], False, False
        nodes[s["span_id"]] = s
    roots = _span_roots(spans, nodes)
    by_call: dict[Any, list[dict]] = {}
    for e in events + span_calls:  # a tool span carries its own span id: its call hangs there
        by_call.setdefault(e["call_id"] or f"event:{e['event_id']}", []).append(e)
    loose = []
    for key, evs in by_call.items():
        evs = _in_call_order(evs)
        call = summarise_call(evs[0]["call_id"], evs)
        span_ids = [e["span_id"] for e in evs if e["span_id"] in nodes]
        if span_ids:
            nodes[span_ids[0]]["calls"].append(call)
        else:
            loose.append(call)
    return {"trace_id": tid, "spans": _tree_order(roots), "calls": loose, "events": events,
            "counts": {"spans": len(spans), "orphans": sum(1 for r in roots if r["orphan"]),
                       "cycles": sum(1 for r in roots if r["cycle"]),
                       "events": len(events), "calls": len(by_call)}}


def _tree_order(roots: list[dict]) -> list[dict]:
    """Every span under ``roots``, depth-first, each with its ``depth``; ``children`` dropped.
    A loop, not recursion: a chain may be thousands of spans deep."""
    out, stack = [], [(r, 0) for r in reversed(roots)]
    while stack:
        node, depth = stack.pop()
        children = node.pop("children")
        node["depth"] = depth
        out.append(node)
        stack.extend((c, depth + 1) for c in reversed(children))
    return out


def _span_roots(spans: list[dict], nodes: dict[str, dict]) -> list[dict]:
    """Link each span under its parent; return the roots, in start order.

    A root is a span without a parent, one whose parent has not been received (``orphan``),
    or the earliest span of a parent cycle (``cycle``: A's parent is B and B's is A, or a
    span is its own parent), whose own parent link is then left out of the tree: no span
    of a cycle is reachable from a root otherwise, and each must be shown exactly once.
    """
    roots = []
    for s in spans:
        parent = s["parent_span_id"]
        if parent and parent in nodes:
            nodes[parent]["children"].append(s)
        else:
            s["orphan"] = bool(parent)
            roots.append(s)
    reached: set[str] = set()

    def reach(root: dict) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            reached.add(node["span_id"])
            stack.extend(node["children"])

    for r in roots:
        reach(r)
    order = {s["span_id"]: i for i, s in enumerate(spans)}
    for s in spans:  # start order: the first unreached span leads into (or sits on) a cycle
        if s["span_id"] in reached:
            continue
        path: dict[str, int] = {}  # span id -> position on the walk up
        node = s
        while node["span_id"] not in path:  # every unreached span has a stored parent
            path[node["span_id"]] = len(path)
            node = nodes[node["parent_span_id"]]
        loop = list(path)[path[node["span_id"]]:]
        head = nodes[min(loop, key=order.__getitem__)]
        parent = nodes[head["parent_span_id"]]
        parent["children"] = [c for c in parent["children"] if c is not head]
        head["cycle"] = True
        roots.append(head)
        reach(head)
    roots.sort(key=lambda r: order[r["span_id"]])
    return roots


def _stage_rank(stage: str | None) -> int:
    return {"validate": 1, "authorize": 2, "execute": 3}.get(stage or "", 4)
