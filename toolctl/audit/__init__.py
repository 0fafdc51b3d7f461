"""Audit: forensic lookups, trace timelines, the tamper-evident ledger, redaction at ingest.

The library never prints; the CLI (``toolctl.cli.audit``) renders what it returns.
SQL lives in ``toolctl/audit/queries/NAME.sql``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    """The text of ``toolctl/audit/queries/<name>.sql``, with ``{span_call_columns}`` replaced
    by the expression list of ``span_call_columns.sql`` (a tool span as a tool-call row; its
    leading comment left out)."""
    queries = resources.files("toolctl.audit").joinpath("queries")
    text = queries.joinpath(f"{name}.sql").read_text("utf-8")
    if "{span_call_columns}" in text:
        fragment = queries.joinpath("span_call_columns.sql").read_text("utf-8").splitlines()
        text = text.replace("{span_call_columns}",
                            "\n".join(line for line in fragment if not line.startswith("--")))
    return text
