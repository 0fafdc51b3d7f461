"""Imports flow one way: the library never imports the terminal layer (typer/rich)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY_DIRS = ["toolctl/store", "toolctl/metrics", "toolctl/audit", "toolctl/gate", "collector"]
LIBRARY_FILES = ["toolctl/models.py", "toolctl/errors.py", "toolctl/config.py", "toolctl/timeutil.py"]
FORBIDDEN = {"typer", "rich", "click"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def library_modules():
    for d in LIBRARY_DIRS:
        yield from (REPO / d).rglob("*.py") if (REPO / d).exists() else ()
    for f in LIBRARY_FILES:
        yield REPO / f


def test_library_modules_do_not_import_typer_or_rich():
    offenders = {str(p.relative_to(REPO)): sorted(_imports(p) & FORBIDDEN) for p in library_modules()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"terminal libraries imported below the CLI: {offenders}"


def test_only_the_store_imports_duckdb_at_module_level():
    offenders = []
    for p in library_modules():
        if "toolctl/store" in str(p):
            continue
        tree = ast.parse(p.read_text("utf-8"))
        for node in tree.body:  # module level only: lazy imports inside functions are fine
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "duckdb" for n in names):
                offenders.append(str(p.relative_to(REPO)))
    assert not offenders


def _imported_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    import subprocess
    import sys

    probe = f"{code}\nimport sys\nprint(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_cli_help_does_not_import_heavy_modules():
    heavy = _imported_by("from toolctl.cli import app",
                         ("duckdb", "pyarrow", "opentelemetry", "numpy", "scipy", "httpx"))
    assert heavy == [], f"imported at CLI start-up: {heavy}"


def test_the_gates_statistics_do_not_import_scipy_stats():
    # Importing scipy.stats (~0.9 CPU-seconds) beside DuckDB's count slowed the 10M-event
    # gate by ~0.7 s; only arms of 8 or fewer values may still need it (exact Mann-Whitney).
    code = "\n".join([
        "import numpy as np",
        "from toolctl.gate import statistics as st",
        "rng = np.random.default_rng(1)",
        "c, b = np.sort(rng.lognormal(3, .5, 500)), np.sort(rng.lognormal(3, .5, 400))",
        "st.mann_whitney_shift(c, b); st.quantile_interval(c, 0.95, 0.95)",
        "st.newcombe_diff(3, 100, 1, 90); st.welch_diff(1, 2, 30, 1.5, 2, 40)",
    ])
    assert _imported_by(code, ("scipy.special", "scipy.stats")) == ["scipy.special"]
