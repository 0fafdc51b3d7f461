"""The Parquet lake: hive-partitioned, immutable files many collectors write (docs/lake.md).

``layout`` is the on-disk interface (version 1), ``export`` writes a store's rows to it
(``toolctl lake export``, ``toolctl serve --lake``), ``compact`` merges the small files of
closed hours, ``verify`` checks the files against this store's ledger. No typer/rich here:
the CLI is ``toolctl.cli.lake``. SQL lives in ``toolctl/lake/queries/NAME.sql``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    """The text of ``toolctl/lake/queries/<name>.sql``."""
    return resources.files("toolctl.lake").joinpath("queries", f"{name}.sql").read_text("utf-8")
