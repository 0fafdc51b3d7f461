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


def test_cli_help_does_not_import_heavy_modules():
    import subprocess
    import sys

    code = ("import sys; from toolctl.cli import app; "
            "heavy = [m for m in ('duckdb', 'pyarrow', 'opentelemetry', 'numpy', 'scipy', 'httpx') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported at CLI start-up: {out}"
