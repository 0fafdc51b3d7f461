"""Shared options of the commands that can read a Parquet lake: --engine, --lake, --spark-master."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer


class Engine(str, Enum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[Engine, typer.Option("--engine", help="Query engine for --lake: duckdb (this machine) or spark.")]
LakeOpt = Annotated[Optional[str], typer.Option("--lake", metavar="DIR", help="Read the Parquet lake DIR instead of the store (docs/engines.md).")]
SparkMasterOpt = Annotated[Optional[str], typer.Option("--spark-master", envvar="TOOLCTL_SPARK_MASTER", help="Spark master for --engine spark (default local[*]; spark://host:7077, yarn, k8s://…).")]


def lake_source(engine: Engine, lake: str | None, spark_master: str | None):
    """The lake source to read, or None (read the store as usual). UsageError: spark without a lake."""
    from toolctl.errors import UsageError

    if lake is None:
        if engine is Engine.spark:
            raise UsageError("--engine spark reads a lake: --lake DIR is missing",
                             hint="e.g. toolctl stats --engine spark --lake /data/toolctl-lake")
        return None
    from toolctl.engines import open_source

    return open_source(engine.value, lake, spark_master)
