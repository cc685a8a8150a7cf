"""The notebook helpers (docs/ARCHITECTURE.md, "Notebook parameters and provenance"): relative paths
resolve against the repository root whatever the working directory, list parameters accept papermill's
string form and name the parameter when they cannot be read, and every notebook applies both in its
first code cell."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

import acsl
from acsl import notebook
from acsl.notebook import list_parameter, repository_root, resolve_path
from acsl.report import NOTEBOOKS_DIR, available_notebooks

CHECKOUT = Path(acsl.__file__).resolve().parents[1]


# --- the repository root and relative paths -------------------------------------------------------------

def test_the_root_is_the_checkout_holding_acsls_pyproject():
    assert repository_root() == CHECKOUT
    assert 'name = "acsl"' in (CHECKOUT / "pyproject.toml").read_text()


def test_relative_paths_resolve_against_the_root_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as JupyterLab's kernel in notebooks/
    assert resolve_path("run_store", "runs") == CHECKOUT / "runs"
    assert resolve_path("data_root", Path("data") / "x") == CHECKOUT / "data" / "x"
    assert resolve_path("output_dir", "../elsewhere") == CHECKOUT / ".." / "elsewhere"


def test_absolute_and_home_paths_stay_as_given(tmp_path):
    assert resolve_path("run_store", str(tmp_path / "runs")) == tmp_path / "runs"
    assert resolve_path("run_store", tmp_path) == tmp_path
    assert resolve_path("data_root", "~/data") == Path.home() / "data"
    assert resolve_path("data_root", "data", root=tmp_path) == tmp_path / "data"


def _package(tmp_path: Path, pyproject: str | None) -> Path:
    package = tmp_path / "site-packages" / "acsl"
    package.mkdir(parents=True)
    if pyproject is not None:
        (package.parent / "pyproject.toml").write_text(pyproject)
    return package


def test_a_wheel_install_has_no_root(tmp_path):
    assert repository_root(_package(tmp_path, None)) is None


@pytest.mark.parametrize("pyproject", [
    '[project]\nname = "other"\n',
    '[tool.something]\nname = "acsl"\n[project]\nname = "other"\n',  # the name must be the project's
    "not toml at all",
])
def test_a_pyproject_of_another_project_is_not_the_root(tmp_path, pyproject):
    assert repository_root(_package(tmp_path, pyproject)) is None


def test_a_pyproject_naming_acsl_is_the_root(tmp_path):
    package = _package(tmp_path, "[build-system]\nrequires = []\n\n[project]\nname = 'acsl'  # here\n")
    assert repository_root(package) == package.parent


def test_without_a_root_relative_paths_resolve_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "repository_root", lambda: None)  # acsl installed as a wheel
    monkeypatch.chdir(tmp_path)
    assert resolve_path("run_store", "runs") == tmp_path / "runs"


@pytest.mark.parametrize("value", ["", "  ", None, 3, True])
def test_a_path_that_is_not_one_names_the_parameter(value):
    with pytest.raises(ValueError, match=r"^run_store: expected a path .* got "):
        resolve_path("run_store", value)


# --- list parameters -----------------------------------------------------------------------------------

def test_lists_and_tuples_pass_with_their_items_converted():
    assert list_parameter("xis", [0.1, 0.7], float) == [0.1, 0.7]
    assert list_parameter("xis", (1, "0.5"), float) == [1.0, 0.5]
    assert list_parameter("dividing_lines", [5, 50.0, "500"], int) == [5, 50, 500]
    assert list_parameter("methods", ("RFS", " EQL "), str) == ["RFS", "EQL"]
    assert list_parameter("head", [], str) == []


@pytest.mark.parametrize("value, item_type, expected", [
    ("[0.1, 0.7]", float, [0.1, 0.7]),                 # papermill -p xis '[0.1, 0.7]'
    ("[5, 50, 500, 5000]", int, [5, 50, 500, 5000]),
    ('["RFS", "Focal Loss"]', str, ["RFS", "Focal Loss"]),
    ("['A', 'B']", str, ["A", "B"]),                   # a Python list literal
    ("[]", float, []),
])
def test_a_json_or_python_list_string_is_parsed(value, item_type, expected):
    assert list_parameter("p", value, item_type) == expected


@pytest.mark.parametrize("value, item_type, expected", [
    ("0.1,0.7", float, [0.1, 0.7]),
    (" 0.1 , 0.7 ", float, [0.1, 0.7]),
    ("5,50", int, [5, 50]),
    ("RFS, Focal Loss", str, ["RFS", "Focal Loss"]),
    ("0.7", float, [0.7]),
    ("A", str, ["A"]),
])
def test_a_comma_separated_string_is_split(value, item_type, expected):
    assert list_parameter("p", value, item_type) == expected


def test_a_lone_number_is_a_list_of_one():
    assert list_parameter("xis", 0.7, float) == [0.7]  # papermill -p xis 0.7 injects the float
    assert list_parameter("dividing_lines", 50, int) == [50]


def test_a_bad_string_names_the_parameter_and_the_expected_form():
    with pytest.raises(ValueError) as error:
        list_parameter("xis", "abc", float)
    assert str(error.value) == "xis: expected a list of numbers such as [0.1, 0.7] or '0.1,0.7', got 'abc'"


@pytest.mark.parametrize("value, item_type, message", [
    ("0.1,abc", float, r"^xis: expected a list of numbers .* got '0.1,abc' \(item 2, 'abc', is not a finite number\)$"),
    ("[0.1, 0.7", float, r"^xis: expected a list of numbers .* got '\[0.1, 0.7'$"),
    ("0.1,,0.7", float, r"^xis: .* got '0.1,,0.7'$"),
    ("", float, r"^xis: .* got ''$"),
    ("nan", float, r"^xis: .* got 'nan'$"),
    ("[true]", float, r"^xis: .* \(item 1, True, is not a finite number\)$"),
    (None, float, r"^xis: .* got None$"),
    (True, float, r"^xis: .* got True$"),
    ({"a": 1}, float, r"^xis: .* got \{'a': 1\}$"),
    ("5.5", int, r"^xis: expected a list of integers such as \[5, 50\] or '5,50', got '5.5'$"),
    ([1, "RFS"], str, r"^xis: expected a list of names .* got \[1, 'RFS'\] \(item 1, 1, is not a non-empty string\)$"),
    (3, str, r"^xis: expected a list of names .* got 3$"),
])
def test_what_is_not_a_list_of_the_type_is_refused_by_name(value, item_type, message):
    with pytest.raises(ValueError, match=message):
        list_parameter("xis", value, item_type)


def test_the_example_can_be_given_and_the_item_type_is_checked():
    with pytest.raises(ValueError, match=r"^head: expected a list of names such as 'A,B', got 5$"):
        list_parameter("head", 5, str, example="'A,B'")
    with pytest.raises(ValueError, match=r"^xis: item_type must be one of float, int, str"):
        list_parameter("xis", [1], complex)


# --- every notebook applies them -----------------------------------------------------------------------

#: List parameters whose default is not a list literal (None: every method; the profile's report seeds).
LIST_PARAMETERS_WITHOUT_A_LIST_DEFAULT = {"table4_sota": {"methods", "seeds"}, "table2_xi_ablation": {"seeds"},
                                         "table5_openimages_backbones": {"seeds"}, "table7_openimages_methods": {"seeds"},
                                         "beyond_after_acsl": {"methods", "seeds"}}
PATH_PARAMETERS = ("run_store", "data_root", "output_dir")


def _parameters_and_next_cell(path: Path) -> tuple[dict[str, ast.expr], str]:
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assignments = {target.id: node.value for node in ast.parse(cells[index].source).body
                   if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}
    return assignments, cells[index + 1].source


def _calls(source: str, function: str) -> set[str]:
    """The names (first arguments, as string constants) that ``source`` passes to ``function``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function and node.args:
            if isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize("path", available_notebooks(NOTEBOOKS_DIR), ids=lambda p: p.stem)
def test_every_notebook_resolves_its_paths_reads_its_lists_and_shows_provenance_first(path):
    parameters, first_cell = _parameters_and_next_cell(path)
    paths = {name for name in PATH_PARAMETERS if name in parameters}
    assert paths >= {"data_root", "output_dir"}
    assert _calls(first_cell, "resolve_path") | _calls(first_cell, "output_dir_parameter") >= paths
    assert "output_dir" in _calls(first_cell, "output_dir_parameter")  # created and writable before anything trains
    lists = {name for name, value in parameters.items() if isinstance(value, (ast.List, ast.Tuple))}
    lists |= LIST_PARAMETERS_WITHOUT_A_LIST_DEFAULT.get(path.stem, set())
    assert _calls(first_cell, "list_parameter") == lists
    assert "show_provenance(" in first_cell


def test_repeated_items_and_items_out_of_range_are_refused_naming_the_parameter():
    with pytest.raises(ValueError, match=r"^seeds: 0 given more than once in '0,0'; give each once"):
        list_parameter("seeds", "0,0", int, unique=True)
    assert list_parameter("seeds", "0,1", int, unique=True) == [0, 1]
    with pytest.raises(ValueError, match=r"^xis: item 2, 1\.5, must lie in \(0, 1\]"):
        list_parameter("xis", "[0.7, 1.5]", float, check=lambda xi: 0 < xi <= 1, requirement="must lie in (0, 1]")


def test_an_output_folder_that_cannot_be_written_is_refused_naming_the_parameter(tmp_path):
    from acsl.notebook import output_dir_parameter

    assert output_dir_parameter("output_dir", tmp_path / "new" / "reports").is_dir()  # created
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match=rf"^output_dir: the output directory {blocker}/reports is not writable"):
        output_dir_parameter("output_dir", blocker / "reports")
