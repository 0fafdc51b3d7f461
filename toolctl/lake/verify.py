"""``toolctl audit verify --lake DIR``: the lake's files against this store's ledger.

Every ``lake_file`` entry (and the output of every ``lake_compact`` entry) of this store for
this lake names a file with its row count and sha256. Each must exist with exactly that
digest and count, or have been compacted away: a finished compaction journal
(``_compactions/*.json``, any writer) lists it as an input with the same digest, and the
journal's output, followed the same way, exists with the digest the journal records and
holds the rows of all its inputs. Files no ledger of this store knows are listed as
information (other writers' files), never as problems.

``rows`` counts what this store exported: the recorded rows of each of its ``lake_file``
entries whose file checks out, directly or through the compactions that replaced it. A
compaction output is not counted itself: it holds those same rows and, when several writers
share a partition, other writers' rows too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolctl.lake.compact import compaction_records
from toolctl.lake.layout import list_files, open_lake, parquet_rows, sha256_file

#: How many unknown files the report lists by name (all are counted).
UNKNOWN_LISTED = 50


def verify_lake(store: Any, root: Path | str) -> dict:
    """Check the lake at ``root`` against this store's ledger; returns a JSON-ready report
    (``intact`` false when a recorded file is missing, altered or miscounted)."""
    root = Path(root)
    lake_id = open_lake(root, create=False)["lake_id"]
    expected: dict[str, dict] = {}  # path -> {rows, sha256, seq, exported}
    for e in store.fetch_dicts("SELECT seq, kind, payload FROM ledger"
                               " WHERE kind IN ('lake_file', 'lake_compact') ORDER BY seq"):
        payload = json.loads(e["payload"])
        if payload.get("lake_id") != lake_id:
            continue
        if e["kind"] == "lake_file":
            expected[payload["path"]] = {"rows": payload["rows"], "sha256": payload["sha256"], "seq": e["seq"],
                                         "exported": True}
        else:
            out = payload["output"]
            expected[out["path"]] = {"rows": out["rows"], "sha256": out["sha256"], "seq": e["seq"],
                                     "exported": False}
    replaced = {}  # (input path, sha256) -> journal
    for doc in compaction_records(root):
        if doc.get("lake_id") == lake_id:
            for item in doc["inputs"]:
                replaced[(item["path"], item["sha256"])] = doc
    on_disk = {f.path: f for f in list_files(root)}
    problems: list[dict] = []
    present: set[str] = set()
    checked_digest: dict[str, str | None] = {}
    compacted_away = 0
    rows = 0

    def digest(path: str) -> str | None:
        if path not in checked_digest:
            p = root / path
            checked_digest[path] = sha256_file(p) if p.exists() else None
        return checked_digest[path]

    for path, want in expected.items():
        seq, cur, cur_rows, cur_sha = want["seq"], path, want["rows"], want["sha256"]
        seen = set()
        while True:
            got = digest(cur)
            if got is not None:
                if got != cur_sha:
                    via = "" if cur == path else f" (it replaced {path})"
                    problems.append({"seq": seq, "path": cur, "problem": f"{cur} was modified: sha256 "
                                     f"differs from the one recorded{via}"})
                else:
                    try:
                        n = parquet_rows(root / cur)
                    except Exception as exc:  # unreadable Parquet with the recorded digest: report
                        problems.append({"seq": seq, "path": cur, "problem": f"{cur} is unreadable: {exc}"})
                        break
                    if n != cur_rows:
                        problems.append({"seq": seq, "path": cur, "problem": f"{cur} holds {n} rows, "
                                         f"recorded {cur_rows}"})
                    elif want["exported"]:
                        rows += want["rows"]  # in its own file, or inside the output that replaced it
                    present.add(cur)
                break
            journal = replaced.get((cur, cur_sha))
            if journal is None or cur in seen:
                problems.append({"seq": seq, "path": cur, "problem": f"{cur} was deleted (recorded by ledger "
                                 f"entry {seq}, and no compaction replaced it)"})
                break
            seen.add(cur)
            total_in = sum(i["rows"] for i in journal["inputs"])
            if total_in != journal["output"]["rows"]:
                problems.append({"seq": seq, "path": cur, "problem": f"compaction {journal['_journal'].name} "
                                 f"claims {journal['output']['rows']} rows from inputs holding {total_in}"})
                break
            if cur == path:
                compacted_away += 1
            cur, cur_rows, cur_sha = journal["output"]["path"], journal["output"]["rows"], journal["output"]["sha256"]
    known = present | {p for p in expected}
    unknown = sorted(p for p in on_disk if p not in known)
    writers: dict[str, int] = {}
    for p in unknown:
        writers[on_disk[p].writer_id] = writers.get(on_disk[p].writer_id, 0) + 1
    seen_paths: set[str] = set()  # one problem per broken file, at the first entry it breaks
    problems = [p for p in sorted(problems, key=lambda p: p["seq"])
                if not (p["path"] in seen_paths or seen_paths.add(p["path"]))]
    return {"lake": str(root), "lake_id": lake_id, "intact": not problems, "files_recorded": len(expected),
            "files_present": sum(1 for p in expected if p in present), "compacted_away": compacted_away,
            "rows": rows, "problems": problems, "unknown_files": len(unknown),
            "unknown_by_writer": writers, "unknown_listed": unknown[:UNKNOWN_LISTED]}
