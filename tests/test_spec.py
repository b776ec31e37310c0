"""The function spec: params derived from signatures, checked by their types.

Also the layering it exists for: ``openhcs_nb.spec`` is a leaf, and
``pipeline`` and ``functions`` never import each other both ways.
"""

from __future__ import annotations

import ast
import math
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytest
from msgspec import Meta

from openhcs_nb.errors import PipelineError
from openhcs_nb.spec import (
    Function,
    LabelsName,
    LabelsRef,
    Param,
    params_from_signature,
)

PACKAGE = Path(__file__).resolve().parents[1] / "openhcs_nb"


def _toy(
    stack: np.ndarray,
    *,
    sigma: Annotated[float, Meta(ge=0, le=20, description="width (pixels)")] = 2.0,
    size: Annotated[int, Meta(ge=1, le=200, description="side (pixels)")] = 5,
    mode: Annotated[Literal["max", "mean"], Meta(description="how")] = "max",
    clip: Annotated[bool, Meta(description="clip to [0, 1]")] = True,
    seeds: Annotated[LabelsName, Meta(description="seed objects")] = "",
    level: Annotated[float, Meta(ge=0, le=1, description="cut (required)")],
    labels: object = None,
) -> np.ndarray:
    """Every parameter kind; returns the stack scaled so calls are visible."""
    return np.asarray(stack) * level


TOY = Function("toy", "1", _toy, "a toy", "test", needs_labels=True)


def test_when_params_are_derived_then_each_keeps_type_default_help_and_range():
    sigma, size, mode, clip, seeds, level = TOY.params
    assert (sigma.type, sigma.default, sigma.min, sigma.max) == ("float", 2.0, 0, 20)
    assert sigma.help == "width (pixels)"
    assert (size.type, size.default, size.min, size.max) == ("int", 5, 1, 200)
    assert (mode.type, mode.choices, mode.default) == ("choice", ("max", "mean"), "max")
    assert (clip.type, clip.default) == ("bool", True)
    assert (seeds.type, seeds.default, seeds.help) == ("labels", "", "seed objects")
    assert (level.type, level.required, level.default) == ("float", True, None)
    assert not any(p.required for p in (sigma, size, mode, clip, seeds))
    assert "labels" not in TOY.param_index  # context, passed by the runner


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"sigma": -1}, "sigma", "must be >= 0.0, got -1.0"),
        ({"sigma": 20.5}, "sigma", "must be <= 20.0, got 20.5"),
        ({"sigma": True}, "sigma", "expected float, got bool True"),
        ({"sigma": "2"}, "sigma", "expected float, got str '2'"),
        ({"sigma": math.inf}, "sigma", "must be finite, got inf"),
        ({"sigma": math.nan}, "sigma", "must be finite, got nan"),
        ({"size": True}, "size", "expected int, got bool True"),
        ({"size": 2.0}, "size", "expected int, got float 2.0"),
        ({"size": 0}, "size", "must be >= 1, got 0"),
        ({"size": 10**30}, "size", f"must be <= 200, got {10**30}"),
        ({"mode": "median"}, "mode", "must be one of ['max', 'mean'], got 'median'"),
        ({"mode": 1}, "mode", "must be one of ['max', 'mean'], got 1"),
        ({"clip": 1}, "clip", "expected bool, got int 1"),
        ({"seeds": 3}, "seeds", "expected str, got int 3"),
        ({"seeds": None}, "seeds", "None is not allowed"),
        ({"level": None}, "level", "a value is required"),
    ],
)
def test_when_a_value_breaks_its_type_then_the_error_names_field_and_rule(
    kwargs, field, reason
):
    with pytest.raises(PipelineError) as info:
        TOY.check_kwargs(kwargs, step="s")
    assert (info.value.step, info.value.field, info.value.reason) == (
        "s",
        field,
        reason,
    )


@pytest.mark.parametrize("name", ["9nuclei", "-x", "has space", "a" * 65, "nuc.lei"])
def test_when_a_labels_name_is_not_a_step_name_then_it_is_refused(name):
    with pytest.raises(PipelineError, match="must name a labels step") as info:
        TOY.check_kwargs({"seeds": name})
    assert info.value.field == "seeds"


def test_when_values_are_valid_then_they_are_normalised_and_defaults_dropped():
    checked = TOY.check_kwargs(
        {"sigma": 3, "size": 5, "mode": "mean", "seeds": "nuclei-1", "level": 1}
    )
    assert checked == {"sigma": 3.0, "mode": "mean", "seeds": "nuclei-1", "level": 1.0}
    assert type(checked["sigma"]) is float and type(checked["level"]) is float
    assert TOY.check_kwargs({"sigma": 2, "seeds": ""}) == {}  # 2 is the default 2.0


def test_when_called_without_a_required_value_then_it_refuses_before_running():
    with pytest.raises(PipelineError) as info:
        TOY(np.ones((1, 2, 2)))
    assert info.value.field == "level"
    assert TOY(np.ones((1, 2, 2)), level=0.5).sum() == pytest.approx(2.0)


def test_when_a_param_is_written_by_hand_then_it_checks_like_a_derived_one():
    by_hand = Param("sigma", "float", 2.0, "width (pixels)", min=0.0, max=20.0)
    derived = TOY.param_index["sigma"]
    for value in (-1, 0, 7, 20, 20.5, True, "x", math.nan):
        outcomes = []
        for param in (by_hand, derived):
            try:
                outcomes.append(param.check(value))
            except PipelineError as exc:
                outcomes.append(exc.reason)
        assert outcomes[0] == outcomes[1], value
    labels = Param("seeds", "labels", "", "seed objects")
    assert labels.check("nuclei") == "nuclei"
    with pytest.raises(PipelineError, match="must name a labels step"):
        labels.check("1st")


@pytest.mark.parametrize(
    ("hint", "default", "message"),
    [
        (Annotated[float, Meta(gt=0, description="d")], 1.0, "ge/le"),
        (Annotated[float, Meta(description="d")], None, "leave out the default"),
        (Annotated[list, Meta(description="d")], [], "has type"),
        (Annotated[int, LabelsRef()], 0, "must be a str"),
        (Annotated[int, Meta(ge=0, le=5, description="d")], 9, "bad default"),
    ],
)
def test_when_a_declaration_is_wrong_then_it_fails_at_definition(
    hint, default, message
):
    def impl(stack, *, x=default):  # annotation set below: a runtime object
        return stack

    impl.__annotations__ = {"x": hint}
    with pytest.raises(TypeError, match=message):
        params_from_signature(impl)


def test_when_an_impl_param_has_no_annotation_then_deriving_fails():
    def impl(stack, *, n=1):
        return stack

    with pytest.raises(TypeError, match="no type annotation"):
        Function("bad", "1", impl, "bad", "x")


def test_when_schema_is_built_then_it_is_json_schema_of_the_kwargs():
    schema = TOY.schema()
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["level"]
    props = schema["properties"]
    assert props["sigma"] == {
        "type": "number",
        "minimum": 0,
        "maximum": 20,
        "description": "width (pixels)",
        "default": 2.0,
    }
    assert set(props["mode"]["enum"]) == {"max", "mean"}
    assert props["seeds"]["x-openhcs-type"] == "labels"
    assert props["seeds"]["description"] == "seed objects"  # the later Meta wins
    assert "default" not in props["level"]


def _tagged(
    stack: np.ndarray,
    *,
    tag: Annotated[str, Meta(pattern="^[a-z]+$", description="lower-case tag")] = "a",
    size: Annotated[int, Meta(ge=1, le=200, description="side (pixels)")] = 5,
    seeds: Annotated[LabelsName, Meta(description="seed objects")] = "",
) -> np.ndarray:
    return stack


def test_when_a_function_is_pickled_by_value_then_its_annotations_survive():
    fn = Function("tagged", "1", _tagged, "tags", "test")  # not a module attribute
    back = pickle.loads(pickle.dumps(fn))
    assert back is not fn and back == fn and back.params == fn.params
    assert back.schema() == fn.schema()
    with pytest.raises(PipelineError, match="matching regex"):
        back.check_kwargs({"tag": "Upper"})
    with pytest.raises(PipelineError, match="must be <= 200"):
        back.check_kwargs({"size": 201})
    with pytest.raises(PipelineError, match="must name a labels step"):
        back.check_kwargs({"seeds": "1st"})


def test_when_a_module_level_function_is_pickled_then_it_travels_by_name():
    from openhcs_nb.functions import gaussian_blur

    data = pickle.dumps(gaussian_blur)
    assert pickle.loads(data) is gaussian_blur
    assert len(data) < 200  # a reference, not the params
    assert pickle.loads(pickle.dumps(TOY)) is not TOY  # bound as TOY, not toy


def test_when_spec_is_imported_then_only_errors_and_its_params_come_with_it():
    # The package __init__ is replaced by a bare namespace so that only what
    # spec.py itself pulls in is counted.
    code = (
        "import importlib.util, sys, types\n"
        "found = importlib.util.find_spec('openhcs_nb')\n"
        "pkg = types.ModuleType('openhcs_nb')\n"
        "pkg.__path__ = list(found.submodule_search_locations)\n"
        "sys.modules['openhcs_nb'] = pkg\n"
        "import openhcs_nb.spec\n"
        "print(sorted(m for m in sys.modules if m.startswith('openhcs_nb')))\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == (
        "['openhcs_nb', 'openhcs_nb._spec_params', 'openhcs_nb.errors', "
        "'openhcs_nb.spec']"
    )
    assert out[1] == "False"


def _imported_modules(path: Path) -> set[str]:
    """Every module an openhcs_nb source file imports, at any depth."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"relative import in {path}")
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _arrows(source: str, target: str) -> list[str]:
    """``file -> module`` for each import of package ``target`` from ``source``."""
    prefix = f"openhcs_nb.{target}"
    return sorted(
        f"{path.relative_to(PACKAGE)} -> {module}"
        for path in (PACKAGE / source).rglob("*.py")
        for module in _imported_modules(path)
        if module == prefix or module.startswith(prefix + ".")
    )


def test_when_imports_are_read_then_pipeline_never_imports_functions():
    assert _arrows("pipeline", "functions") == []


def test_when_imports_are_read_then_functions_and_pipeline_form_no_cycle():
    forward, back = _arrows("functions", "pipeline"), _arrows("pipeline", "functions")
    assert not (forward and back), (forward, back)
    assert _imported_modules(PACKAGE / "functions" / "_intensity.py") >= {
        "openhcs_nb.spec"
    }


def test_when_only_the_stack_type_is_unresolvable_then_params_still_derive():
    def impl(stack: MissingArrayType, *, n: Annotated[int, Meta(ge=0)] = 1) -> Nope:  # noqa: F821
        return stack

    (param,) = params_from_signature(impl)
    assert (param.name, param.type, param.min) == ("n", "int", 0)
