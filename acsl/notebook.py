"""What a notebook does with its parameters before anything else: paths made absolute against the
repository, and list parameters read from papermill's string form.

Relative paths (docs/ARCHITECTURE.md, "Notebook parameters and provenance"): a notebook's defaults
``run_store = "runs"``, ``data_root = "data"`` and ``output_dir = "reports"`` mean the folders of the
repository, wherever the kernel runs ("Run all" in JupyterLab starts the kernel in ``notebooks/``).
``resolve_path`` anchors them at the repository root: the directory holding the ``pyproject.toml`` whose
project is ``acsl``, found beside the ``acsl`` package of a source or editable checkout. When acsl is
installed from a wheel there is no checkout to anchor to (the package sits in ``site-packages``):
relative paths then resolve against the current working directory, as ``open()`` would. Absolute paths,
and paths starting with ``~``, stay as given.

List parameters: ``papermill -p xis '[0.1, 0.7]'`` injects the *string* ``"[0.1, 0.7]"`` (papermill's
``-p`` turns a value into a bool, None, int or float when it can, else leaves it a string).
``list_parameter`` accepts a list or tuple, that string (a JSON or Python list), a comma-separated string
(``'0.1,0.7'``) or a lone value of the item type (``-p xis 0.7``), and names the parameter and the
expected form for anything else.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .io import ensure_writable_dir

PROJECT_NAME = "acsl"
_NAME_LINE = re.compile(r"""name\s*=\s*(["'])(.*?)\1\s*(#.*)?""")

#: Per item type: what the items are called (all, one) and an example of each accepted form.
_FORMS: dict[type, tuple[str, str, str, str]] = {
    float: ("numbers", "a finite number", "[0.1, 0.7]", "'0.1,0.7'"),
    int: ("integers", "an integer", "[5, 50]", "'5,50'"),
    str: ("names", "a non-empty string", '["RFS", "EQL"]', "'RFS,EQL'"),
}


def _names_acsl(pyproject: Path) -> bool:
    """Whether ``pyproject`` exists and its ``[project]`` table has ``name = "acsl"`` (a line scan of that
    table: tomllib is not in Python 3.10's standard library)."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    in_project = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_project = stripped == "[project]"
        elif in_project and (match := _NAME_LINE.fullmatch(stripped)):
            return match.group(2) == PROJECT_NAME
    return False


def repository_root(package_dir: str | os.PathLike | None = None) -> Path | None:
    """The root of the source checkout acsl is imported from, or ``None`` when it is installed as a wheel.

    The root is the parent of the ``acsl`` package directory (``package_dir``, by default this package's)
    when it holds a ``pyproject.toml`` whose ``[project]`` name is ``acsl``; no other directory is tried,
    so an unrelated project above a ``site-packages`` is never taken for the repository."""
    package = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    candidate = package.resolve().parent
    return candidate if _names_acsl(candidate / "pyproject.toml") else None


def resolve_path(name: str, value: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The absolute path of the path parameter ``name``: ``value`` itself when absolute (after ``~``
    expansion), else ``value`` under ``root`` (by default the repository root, ``repository_root()``;
    the current working directory when acsl is installed as a wheel).

    >>> resolve_path("run_store", "/tmp/runs")
    PosixPath('/tmp/runs')
    """
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError(f"{name}: expected a path (absolute, or relative to the repository root) "
                         f"such as 'runs' or '/data/runs', got {value!r}")
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if root is None:
        root = repository_root() or Path.cwd()
    return Path(root) / path


def output_dir_parameter(name: str, value: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """``resolve_path`` for a notebook's output folder, created and proven writable before anything trains
    (a notebook used to fail after its runs had trained); a ``PermissionError`` names the parameter."""
    path = resolve_path(name, value, root)
    try:
        return ensure_writable_dir(path, "the output")
    except PermissionError as error:
        raise PermissionError(f"{name}: {error}; give a writable folder, e.g. -p {name} reports") from None


def _parse_list_string(text: str) -> list | None:
    """A list parsed from papermill's string form: a JSON or Python list literal, or comma-separated
    items (whitespace around each removed); ``None`` when it is neither."""
    stripped = text.strip()
    if stripped.startswith(("[", "(")):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(stripped)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, (list, tuple)):
                return list(parsed)
        return None
    items = [item.strip() for item in stripped.split(",")]
    return None if any(not item for item in items) else items


def _converter(item_type: type) -> Callable[[Any], Any]:
    """Converts one item to ``item_type`` or raises ``ValueError``; bools are never numbers or names."""
    def to_float(item: Any) -> float:
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise ValueError
        number = float(item)
        if not math.isfinite(number):
            raise ValueError
        return number

    def to_int(item: Any) -> int:
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise ValueError
        if isinstance(item, float):
            if not item.is_integer():
                raise ValueError
            return int(item)
        return int(item)

    def to_str(item: Any) -> str:
        if not isinstance(item, str) or not item.strip():
            raise ValueError
        return item.strip()

    return {float: to_float, int: to_int, str: to_str}[item_type]


def list_parameter(name: str, value: Any, item_type: type, example: str | None = None, unique: bool = False,
                   check: Callable[[Any], bool] | None = None, requirement: str = "") -> list:
    """The list parameter ``name`` as a list of ``item_type`` (``float``, ``int`` or ``str``).

    ``value`` may be a list or tuple, a string holding a JSON or Python list (``"[0.1, 0.7]"``, what
    ``papermill -p xis '[0.1, 0.7]'`` injects), a comma-separated string (``"0.1,0.7"``), or a lone
    number for a list of numbers (``papermill -p xis 0.7`` injects the float 0.7). Every item is
    converted to ``item_type``; numbers must be finite and integers whole. Anything else raises
    ``ValueError`` naming the parameter and the expected form, e.g. ``xis: expected a list of numbers
    such as [0.1, 0.7] or '0.1,0.7', got 'abc'``. ``example`` replaces the built-in example of the form.
    ``unique``: a repeated item is refused (two runs of one seed are one run, not two samples). ``check``: each
    converted item must pass it, else the error names the parameter, the item and ``requirement`` (e.g.
    ``xis: item 2, 1.5, must lie in (0, 1]``), before anything trains.

    >>> list_parameter("xis", "[0.1, 0.7]", float)
    [0.1, 0.7]
    """
    if item_type not in _FORMS:
        raise ValueError(f"{name}: item_type must be one of float, int, str, got {item_type!r}")
    kind, one, as_list, as_string = _FORMS[item_type]
    expected = f"{name}: expected a list of {kind} such as {example or f'{as_list} or {as_string}'}"
    if isinstance(value, str):
        items = _parse_list_string(value)
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif item_type is not str and isinstance(value, (int, float)) and not isinstance(value, bool):
        items = [value]
    else:
        items = None
    if items is None:
        raise ValueError(f"{expected}, got {value!r}")
    convert = _converter(item_type)
    converted = []
    for position, item in enumerate(items, start=1):
        try:
            converted.append(convert(item))
        except (ValueError, TypeError, OverflowError):
            alone = isinstance(value, str) and len(items) == 1 and str(item) == value.strip()
            detail = "" if alone else f" (item {position}, {item!r}, is not {one})"
            raise ValueError(f"{expected}, got {value!r}{detail}") from None
        if check is not None and not check(converted[-1]):
            raise ValueError(f"{name}: item {position}, {converted[-1]!r}, {requirement or 'is not allowed'} (got {value!r})")
    if unique and len(set(converted)) < len(converted):
        repeated = sorted({item for item in converted if converted.count(item) > 1})
        raise ValueError(f"{name}: {', '.join(map(repr, repeated))} given more than once in {value!r}; give each once")
    return converted
