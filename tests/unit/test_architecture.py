"""The architecture of docs/ARCHITECTURE.md, checked: import rules, the web app's use of kb's
public surfaces, and the size of every unit."""
import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kb", "indexer", "search_app")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_FUNCTION_LINES, MAX_CLASS_LINES = 60, 200


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_rules_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_import_rules_catch_kb_importing_flask(tmp_path):
    """The contracts are not vacuous: the same check on a copy whose kb imports Flask fails."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    records = tmp_path / "kb" / "core" / "records.py"
    records.write_text(records.read_text() + "\nimport flask  # a violation\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "kb is a library: no web code, no batch jobs BROKEN" in result.stdout
    assert "kb.core.records -> flask" in result.stdout


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_web_app_uses_only_kb_and_its_package_surfaces():
    """`from kb.insight import brief`, never `from kb.insight.talking_points import brief`."""
    deep = {f"{p.relative_to(ROOT)}: {name}"
            for p in (ROOT / "search_app").rglob("*.py") for name in _imports(p)
            if name.startswith("kb.") and name.count(".") > 1}
    assert not deep, f"search_app imports kb modules instead of package surfaces: {sorted(deep)}"


def _units():
    for name in PACKAGES:
        for path in sorted((ROOT / name).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    yield path.relative_to(ROOT), node


@pytest.mark.parametrize(("kind", "limit"), [("function", MAX_FUNCTION_LINES), ("class", MAX_CLASS_LINES)])
def test_no_unit_is_too_long(kind, limit):
    too_long = []
    for path, node in _units():
        is_class = isinstance(node, ast.ClassDef)
        if is_class == (kind == "class"):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                too_long.append(f"{path}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, f"{kind} units over {limit} lines: {too_long}"
