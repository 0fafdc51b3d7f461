"""``toolctl rejects``: the lines ingest refused, with their reasons."""

from __future__ import annotations

from typing import Any

from toolctl.store import Store

LIST_REJECTS = """
-- list_rejects: kept rejects, newest ingest first, then by source and line.
-- Parameters: $source (NULL = all; matched as a substring of the stored path), $limit.
SELECT source, line_no, reason, raw, raw_bytes, rejected_at
FROM rejects
WHERE $source::VARCHAR IS NULL OR contains(source, $source::VARCHAR)
ORDER BY batch_id DESC, source, line_no
LIMIT $limit
"""

COUNT_REJECTS = """
SELECT count(*) FROM rejects WHERE $source::VARCHAR IS NULL OR contains(source, $source::VARCHAR)
"""


def list_rejects(store: Store, *, source: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Rejected lines (up to ``limit``) and how many exist in total."""
    rows = store.fetch_dicts(LIST_REJECTS, {"source": source, "limit": limit})
    total = store.scalar(COUNT_REJECTS, {"source": source})
    return {"total": total, "rows": rows}
