"""Audit: forensic lookups, trace timelines, the tamper-evident ledger, redaction at ingest.

The library never prints; the CLI (``toolctl.cli.audit``) renders what it returns.
SQL lives in ``toolctl/audit/queries/NAME.sql``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    """The text of ``toolctl/audit/queries/<name>.sql``."""
    return resources.files("toolctl.audit").joinpath("queries", f"{name}.sql").read_text("utf-8")
