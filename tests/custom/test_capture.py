"""``@openhcs_nb.function``: declaring, shipping as source, reading back safely."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import pytest
from msgspec import Meta

import openhcs_nb
from openhcs_nb import Pipeline, PipelineCodeError, Step, load_pipeline, run_local
from openhcs_nb.custom import CustomFunction, ShippingError, catalogue_with, function
from openhcs_nb.errors import ExecutionError
from openhcs_nb.functions import gaussian_blur, label_objects, measure_objects

LIMIT = 3.0  # a plain constant: shipped as ``LIMIT = 3.0``
WEIGHTS = [1.0, 2.0]  # a list can change under the function: not shippable


@function
def doubled(stack):
    """Twice the input."""
    return stack * 2


@openhcs_nb.function(version="3", output="mask", help="above a fraction of max")
def above(
    stack,
    *,
    frac: Annotated[float, Meta(ge=0, le=1, description="fraction of max")] = 0.5,
    mode: Literal["max", "mean"] = "max",
    smooth: bool = False,
):
    ref = stack.max(axis=(1, 2), keepdims=True)
    if mode == "mean":
        ref = np.mean(stack, axis=(1, 2), keepdims=True)
    return stack > frac * ref * (1.0 if not smooth else math.sqrt(1.0))


def test_when_declared_bare_then_it_is_a_catalogue_function_with_defaults():
    assert isinstance(doubled, CustomFunction)
    assert (doubled.name, doubled.version, doubled.input, doubled.output) == (
        "doubled",
        "1",
        "image",
        "image",
    )
    assert doubled.help == "Twice the input."
    assert doubled.params == ()
    assert doubled.source.startswith("def doubled(stack):")
    assert float(doubled(np.ones((1, 2, 2)))[0, 0, 0]) == 2.0


def test_when_declared_with_arguments_then_params_follow_the_annotations():
    params = {p.name: p for p in above.params}
    assert (params["frac"].type, params["frac"].min, params["frac"].max) == (
        "float",
        0,
        1,
    )
    assert params["frac"].help == "fraction of max"
    assert params["mode"].choices == ("max", "mean")
    assert params["smooth"].type == "bool"
    assert above.output == "mask" and above.version == "3"
    assert set(above.imports) == {
        "from msgspec import Meta",
        "from typing import Annotated",
        "from typing import Literal",
        "import math",
        "import numpy as np",
    }
    with pytest.raises(openhcs_nb.PipelineError, match="frac"):
        above(np.ones((1, 2, 2)), frac=2.0)


def _pipeline() -> Pipeline:
    return Pipeline(
        name="own",
        steps=[
            Step(name="blur", func=gaussian_blur),
            Step(name="twice", func=doubled),
            Step(
                name="mask",
                func={0: [(above, {"frac": 0.6, "mode": "mean"}), label_objects]},
                group_by="channel",
            ),
            Step(name="measure", func=measure_objects, variable_components=["channel"]),
        ],
    )


def test_when_pipeline_has_own_functions_then_code_holds_them_and_round_trips():
    code = _pipeline().to_code()
    assert "from openhcs_nb import Pipeline, Step, function" in code
    assert "import numpy as np" in code and "import math" in code
    assert doubled.source in code and above.source in code
    assert (
        '@function(version="3", output="mask", help="above a fraction of max")' in code
    )
    loaded = load_pipeline(code)
    assert loaded == _pipeline()
    assert loaded.to_code() == code  # byte-stable
    compile(code, "<pipeline>", "exec")  # and it is plain Python


def test_when_loaded_then_nothing_of_the_custom_code_runs():
    code = (
        _pipeline()
        .to_code()
        .replace("    return stack * 2", "    raise SystemExit('ran!')")
    )
    loaded = load_pipeline(code)
    fn = loaded.step("twice").functions()[0]
    # The server-side implementation only holds text; it refuses to run here.
    with pytest.raises(ExecutionError, match="only in the server's sandbox"):
        fn(np.ones((1, 2, 2)))
    assert "raise SystemExit" in fn.impl.module


def test_when_a_loaded_annotation_is_not_a_plain_type_then_it_is_refused():
    code = (
        _pipeline()
        .to_code()
        .replace(
            "frac: Annotated[float",
            "frac: Annotated[__import__('os').system('x') or float",
        )
    )
    with pytest.raises(PipelineCodeError, match=r"annotation|not a type"):
        load_pipeline(code)


def test_when_a_closure_global_or_lambda_is_used_then_one_line_names_it():
    def make(k):
        def scaled(stack):
            return stack * k

        return scaled

    with pytest.raises(ShippingError, match=r"'k'.*closure"):
        function(make(2))
    with pytest.raises(ShippingError, match="lambda"):
        function(lambda stack: stack)

    def uses_weights(stack):
        return stack * WEIGHTS[0]

    with pytest.raises(ShippingError, match=r"'WEIGHTS' \(list\)"):
        function(uses_weights)

    def helper(stack):
        return stack

    globals()["_notebook_helper"] = helper
    try:

        def calls_helper(stack):
            return _notebook_helper(stack)  # noqa: F821

        with pytest.raises(ShippingError, match=r"'_notebook_helper'.*helper"):
            function(calls_helper)
    finally:
        del globals()["_notebook_helper"]


def test_when_a_plain_constant_is_read_then_it_travels_and_round_trips():
    def over_limit(stack):
        return stack > LIMIT

    fn = function(over_limit)
    assert fn.imports == ("LIMIT = 3.0",)
    code = Pipeline(name="c", steps=[Step(name="s", func=fn)]).to_code()
    assert "\nLIMIT = 3.0\n" in code
    loaded = load_pipeline(code)
    assert loaded.to_code() == code
    assert "LIMIT = 3.0" in loaded.steps[0].functions()[0].impl.module


def test_when_run_locally_then_the_own_function_runs_in_process(small_plate_path):
    results = run_local(_pipeline(), small_plate_path, workers=0, wells=["A01"])
    assert results.wells["status"].tolist() == ["done"]
    assert int(results.wells["count"].iloc[0]) > 0


def test_when_magic_and_builder_use_own_function_then_it_is_offered():
    from builder_doubles import controls

    from openhcs_nb.jupyter.builder import PipelineBuilder

    cat = catalogue_with(above)
    builder = PipelineBuilder(cat, local=cat)
    frac = controls(builder.add_step("above"))["frac"]
    assert (frac.min, frac.max, frac.value) == (0.0, 1.0, 0.5)


HEAD = "from openhcs_nb import Pipeline, Step, function\n\n"
TAIL = '\n\npipeline = Pipeline(name="p", steps=[Step(name="s", func=f)])\n'


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        (
            "@function(version=__import__('os'))\ndef f(stack):\n    return stack\n",
            "must be a literal",
        ),
        ("@function(speed=1)\ndef f(stack):\n    return stack\n", "no argument speed"),
        (
            "@function\ndef f(stack, k: float = max(1, 2)):\n    return stack\n",
            "default of k must be a literal",
        ),
        (
            "@function\ndef f(stack, k=1.0):\n    return stack\n",
            "needs a type annotation",
        ),
        (
            "@function\ndef f(stack, *rest):\n    return stack\n",
            "named parameters only",
        ),
        (
            "@function\n@staticmethod\ndef f(stack):\n    return stack\n",
            "'function' cannot be imported",
        ),
        (
            "X = open('/etc/passwd')\n@function\ndef f(stack):\n    return stack\n",
            "not allowed",
        ),
    ],
)
def test_when_own_function_code_is_hostile_then_the_loader_refuses_it(
    definition, reason
):
    with pytest.raises(PipelineCodeError, match=reason):
        load_pipeline(HEAD + definition + TAIL)
