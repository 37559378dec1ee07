"""The package's shape, as the development guide describes it, checked so that it stays so.

Read from the source (``ast``), not by importing: every import counts, the lazy ones inside
functions and those under ``TYPE_CHECKING`` too, since each is a dependency a maintainer follows.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_cortex"
TOP_LEVEL = {"__init__.py", "exceptions.py", "version_compat.py", "provider_info.py", "py.typed"}
MAX_LINES = 400
#: What the emulator may take from the provider it stands in for: the published, dated facts.
EMULATOR_MAY_IMPORT = {"airflow_cortex.sql.base_models"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules ``path`` imports (``from a import b`` counts ``a.b`` if a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules}


def test_the_top_level_holds_only_the_provider_entry_files():
    assert {path.name for path in PACKAGE.iterdir() if path.is_file()} == TOP_LEVEL


def test_no_import_circles():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_is_longer_than_a_reader_holds_at_once(name):
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it along its concerns"


def test_the_emulator_imports_nothing_of_the_provider_but_its_published_facts():
    """A service double that validated with the provider's own code would repeat the provider's
    bugs, and no test could catch them (moto and fakesnow never import the client they fake)."""
    modules = _modules()
    for name, path in modules.items():
        if name.startswith("airflow_cortex.emulator"):
            taken = {m for m in _imports(path, modules) if not m.startswith("airflow_cortex.emulator")}
            assert taken <= EMULATOR_MAY_IMPORT | {"airflow_cortex"}, f"{name} imports {taken}"
