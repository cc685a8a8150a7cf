"""The structure docs/ARCHITECTURE.md ("Layers and packages") promises: every import points down the
layers, no module over 400 lines, no function over 80, the settings layer imports no torch, and no
comment cites a document outside the repository."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "acsl"

#: Layer of each top-level module or package of ``acsl`` (docs/ARCHITECTURE.md, "Layers and packages");
#: ``models`` may use ``losses`` (a detector is built around a loss), hence its own step.
LAYERS = {
    "config": 0, "profiles": 0, "io": 0, "locks": 0, "paper": 0, "published": 0, "cpu_kernels": 0,
    "layers": 1,
    "losses": 2, "data": 2,
    "models": 3,
    "engine": 4, "evaluation": 4,
    "runs": 5,
    "cli": 6, "report": 6, "tables": 6, "notebook": 6, "provenance": 6, "verdicts": 6, "claims": 6, "index_page": 6, "reference": 6, "__main__": 7,
    "integrations": 7,
}
#: Frameworks only ``acsl.integrations`` may import (docs/ARCHITECTURE.md, "mmdet integration").
FRAMEWORKS = ("mmdet", "mmcv", "mmengine")


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def _imported(name: str, path: Path, node: ast.ImportFrom) -> list[str]:
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        base = package[: len(package) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 and parts[0] == "acsl" else None


def test_every_import_points_down_the_layers():
    upward = []
    for name, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                targets = _imported(name, path, node)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                own, theirs = _layer(name), _layer(target)
                if own is not None and theirs is not None and theirs > own:
                    upward.append(f"{name} imports {target}")
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def _imports(name: str, path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found += _imported(name, path, node)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_integrations_are_a_top_layer_that_nothing_imports_and_the_core_imports_no_framework():
    wrong = []
    for name, path in _modules():
        if name == "acsl.integrations" or name.startswith("acsl.integrations."):
            continue
        for target in _imports(name, path):
            if target == "acsl.integrations" or target.startswith("acsl.integrations."):
                wrong.append(f"{name} imports {target}")
            if target.split(".")[0] in FRAMEWORKS:
                wrong.append(f"{name} imports {target} (only acsl.integrations may)")
    assert not wrong, "\n".join(wrong)
    code = "import sys, acsl.integrations; print(sorted(m for m in sys.modules if m.split('.')[0] in %r))" % (FRAMEWORKS,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"importing acsl.integrations imported {out}"


def test_every_top_level_module_has_a_layer():
    tops = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for _, path in _modules()} - {"__init__"}
    assert tops <= set(LAYERS), f"add {sorted(tops - set(LAYERS))} to LAYERS and to docs/ARCHITECTURE.md"


def test_no_module_over_400_lines_and_no_function_over_80():
    big = [f"{path.relative_to(PACKAGE.parent)}: {n} lines" for _, path in _modules()
           if (n := len(path.read_text().splitlines())) > 400]
    long = []
    for _, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not big and not long, "\n".join(big + long)


@pytest.mark.parametrize("module", ["acsl.config", "acsl.profiles", "acsl.paper", "acsl.published", "acsl.io",
                                    "acsl.cpu_kernels"])
def test_the_settings_layer_imports_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False", f"importing {module} imported torch"


def test_no_comment_cites_a_document_outside_the_repository():
    root = PACKAGE.parent
    cited = []
    for folder in ("acsl", "tests", "benchmarks", "scripts", "notebooks"):
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".py", ".ipynb", ".sh") or path == Path(__file__).resolve():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "DESIGN §" in line or "../shared" in line or "DESIGN.md" in line:
                    cited.append(f"{path.relative_to(root)}:{number}: {line.strip()[:100]}")
    allowed = [c for c in cited if "_DESCRIPTION" in c]  # a string inside generated data files, kept byte-identical
    assert cited == allowed, "\n".join(c for c in cited if c not in allowed)
