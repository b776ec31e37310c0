"""Layers point one way, and ``import openhcs_nb`` stays cheap.

The import edges are read from the source with ``ast`` (every import, also
those inside functions or under ``TYPE_CHECKING``), so a lazy import that
crosses a layer is caught as well. The table below is DESIGN.md's layer
order written as the edges that must not exist.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import openhcs_nb

PACKAGE = Path(openhcs_nb.__file__).parent

#: layer (a sub-package) -> what it must never import: layers of openhcs_nb
#: by name, third-party libraries as ``lib:<top-level name>``.
FORBIDDEN: dict[str, frozenset[str]] = {
    # "the client never imports the server or the notebook layer"
    "client": frozenset(
        {"jupyter", "server", "execution", "lib:IPython", "lib:ipywidgets"}
    ),
    # "results never import execution"; the core never imports Jupyter
    "results": frozenset({"execution", "server", "client", "jupyter"}),
    "protocol": frozenset({"execution", "results", "server", "client", "jupyter"}),
    "execution": frozenset({"server", "client", "jupyter"}),
    "pipeline": frozenset({"execution", "server", "client", "jupyter"}),
    "functions": frozenset({"execution", "server", "client", "jupyter"}),
    "plates": frozenset({"execution", "server", "client", "jupyter"}),
    "omero": frozenset({"execution", "server", "client", "jupyter"}),
    "server": frozenset({"client", "jupyter", "lib:IPython", "lib:ipywidgets"}),
}
#: The lower layers never import these libraries (STYLE.md, rule 8).
LOWER = ("pipeline", "functions", "plates", "results", "protocol")
LOWER_LIBRARIES = frozenset(
    {"lib:zmq", "lib:IPython", "lib:ipywidgets", "lib:omero", "lib:napari"}
)


def imports_in(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``source``, relative ones
    resolved against ``package`` (the package the module sits in)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((node.lineno, module))
    return found


def imported_names(path: Path) -> list[tuple[int, str]]:
    """The imports of one file of the package."""
    package = ".".join(("openhcs_nb", *path.relative_to(PACKAGE).parent.parts))
    return imports_in(path.read_text(), package)


def target_of(module: str) -> str:
    """The layer of openhcs_nb ``module`` is in, or ``lib:<its library>``."""
    parts = module.split(".")
    if parts[0] == "openhcs_nb":
        return parts[1] if len(parts) > 1 else "openhcs_nb"
    return f"lib:{parts[0]}"


def crossings(layer: str, forbidden: frozenset[str]) -> list[str]:
    """``file:line imports module`` for each import of ``layer`` into ``forbidden``."""
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, module in imported_names(path):
            if target_of(module) in forbidden:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_when_reading_the_source_then_no_layer_imports_upwards(layer):
    assert crossings(layer, FORBIDDEN[layer]) == []


@pytest.mark.parametrize("layer", LOWER)
def test_when_reading_the_source_then_lower_layers_import_no_io_or_ui(layer):
    assert crossings(layer, LOWER_LIBRARIES) == []


def test_when_a_layer_does_import_another_then_the_walker_sees_it():
    # The notebook layer uses the client: the walk must see that, or the
    # empty answers above would prove nothing.
    assert crossings("jupyter", frozenset({"client"}))
    assert crossings("client", frozenset({"protocol"}))


def test_when_an_import_is_relative_then_it_is_resolved_to_its_package():
    source = "from . import errors\nfrom ..jupyter import viewer\nimport zmq\n"
    names = [module for _, module in imports_in(source, "openhcs_nb.client")]
    assert names == ["openhcs_nb.client", "openhcs_nb.jupyter", "zmq"]
    assert [target_of(name) for name in names] == ["client", "jupyter", "lib:zmq"]


# --- the cheap import -----------------------------------------------------------

HEAVY = ("pandas", "pyarrow", "zmq", "skimage", "openhcs_nb.client", "IPython")


def loaded_after(*modules: str) -> list[str]:
    """Which of ``HEAVY`` a fresh interpreter holds after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_when_importing_the_package_then_no_heavy_module_is_loaded():
    assert loaded_after("openhcs_nb") == []


def test_when_importing_the_protocol_then_no_client_or_table_library_is_loaded():
    loaded = loaded_after("openhcs_nb.protocol")
    assert set(loaded) & {"pandas", "pyarrow", "openhcs_nb.client", "zmq"} == set()


def test_when_a_worker_process_starts_then_no_client_or_table_library_is_loaded():
    # A forkserver worker preloads execution.well and unpickles its target
    # from server.workers (``_worker_main``).
    loaded = loaded_after("openhcs_nb.execution.well", "openhcs_nb.server.workers")
    assert set(loaded) & {"pandas", "pyarrow", "openhcs_nb.client"} == set()


def test_when_the_heavy_check_runs_then_it_does_see_what_was_loaded():
    assert "openhcs_nb.client" in loaded_after("openhcs_nb.client")


def test_when_a_public_name_is_used_then_it_resolves_to_the_real_object():
    from openhcs_nb.client import Connection
    from openhcs_nb.defaults import default_pipeline

    assert openhcs_nb.Connection is Connection
    assert openhcs_nb.default_pipeline is default_pipeline
    assert callable(openhcs_nb.connect)
    assert callable(openhcs_nb.show_napari)
    for name in openhcs_nb.__all__:
        assert getattr(openhcs_nb, name) is not None


def test_when_listing_the_package_then_dir_names_every_public_name():
    assert set(openhcs_nb.__all__) <= set(dir(openhcs_nb))


def test_when_a_name_is_not_public_then_attribute_error_names_it():
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = openhcs_nb.no_such_name
