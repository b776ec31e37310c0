from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_strategies import TRICKY_TEXT, pipelines
from ruff_check import assert_ruff_clean

from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline import Catalogue, Function, Pipeline, Step, pipeline_to_code
from openhcs_nb.pipeline.codegen import step_to_code

EXPECTED = """\
from openhcs_nb import Pipeline, Step
from openhcs_nb.functions import (
    fill_holes,
    gaussian_blur,
    measure_objects,
    threshold_otsu,
)

pipeline = Pipeline(
    name="nuclei",
    steps=[
        Step(
            name="nuclei",
            func={0: [(gaussian_blur, {"sigma": 1.5}), threshold_otsu, fill_holes]},
            group_by="channel",
        ),
        Step(name="measure", func=measure_objects, variable_components=["channel"]),
    ],
)
"""


def nuclei(c: Catalogue) -> Pipeline:
    chain = [(c["gaussian_blur"], {"sigma": 1.5}), c["threshold_otsu"], c["fill_holes"]]
    return Pipeline(
        name="nuclei",
        steps=[
            Step(name="nuclei", func={0: chain}, group_by="channel"),
            Step(
                name="measure",
                func=c["measure_objects"],
                variable_components=["channel"],
            ),
        ],
    )


def wide(c: Catalogue) -> Pipeline:
    """Long names, many parameters, nested dict chains, strings needing escapes."""
    long_fn = c["rolling_ball_background_subtraction_with_a_long_name"]
    return Pipeline(
        name='a "quoted" \\ name with\nnewline, tab\t, é, 核, \U0001f52c and \x00',
        steps=[
            Step(
                name="background_subtraction_step_with_a_rather_long_name-x",
                func=[
                    (
                        long_fn,
                        {
                            "radius_of_the_rolling_ball_in_pixels": 20,
                            "light_background_instead_of_dark": True,
                            "shrink_factor_before_rolling": 2e20,
                        },
                    ),
                    (c["crop"], {"size": 2**52}),
                ],
                variable_components=["site", "z", "t"],
            ),
            Step(
                name="per_channel",
                func={
                    "DAPI 'it''s'": (c["gaussian_blur"], {"sigma": 1e-7}),
                    'GFP "x"': [
                        (c["normalize"], {"low": 0.5, "high": 99.5, "clip": False}),
                        (c["measure_objects"], {"prefix": "a'b\"c\\d"}),
                    ],
                    7: c["threshold_otsu"],
                },
                variable_components=["site"],
                group_by="channel",
            ),
            Step(name="p", func=(c["max_project"], {"method": "mean"})),
        ],
    )


def test_when_nuclei_pipeline_then_code_matches_expected_text(catalogue):
    assert pipeline_to_code(nuclei(catalogue)) == EXPECTED
    assert nuclei(catalogue).to_code() == EXPECTED


def test_when_generated_twice_or_respelled_then_bytes_are_identical(catalogue):
    c = catalogue
    respelled = Pipeline(
        "nuclei",
        (
            Step(
                {
                    0: [
                        (c["gaussian_blur"], {"sigma": 1.5}),
                        (c["threshold_otsu"], {}),
                        [c["fill_holes"]][0],
                    ]
                },
                name="nuclei",
                variable_components="site",
                group_by="channel",
            ),
            Step(
                [c["measure_objects"]], name="measure", variable_components=("channel",)
            ),
        ),
    )
    assert respelled == nuclei(c)
    assert respelled.to_code() == nuclei(c).to_code() == EXPECTED


def test_when_values_are_default_then_they_are_not_written(catalogue):
    c = catalogue
    p = Pipeline("x", [Step((c["gaussian_blur"], {"sigma": 1}), name="s")])
    assert "func=gaussian_blur)" in p.to_code()
    assert "variable_components" not in p.to_code()
    assert "group_by" not in p.to_code()


def test_when_floats_are_written_then_repr_is_kept(catalogue):
    g = catalogue["gaussian_blur"]
    for value, text in [
        (1.5, "1.5"),
        (2.0, "2.0"),
        (2, "2.0"),
        (1e-7, "1e-07"),
        (0.1, "0.1"),
        (45.000000000000001, "45.0"),
    ]:
        code = Pipeline("x", [Step((g, {"sigma": value}), name="s")]).to_code()
        assert f'{{"sigma": {text}}}' in code


def test_when_empty_pipeline_then_only_pipeline_is_imported():
    code = Pipeline("empty").to_code()
    assert code == (
        "from openhcs_nb import Pipeline\n"
        "\n"
        'pipeline = Pipeline(name="empty", steps=[])\n'
    )


def test_when_many_functions_then_import_is_wrapped_and_sorted(catalogue):
    steps = [
        Step(fn, name=f"s{i}")
        for i, fn in enumerate(catalogue.values())
        if not fn.params or not any(p.required for p in fn.params)
    ]
    code = Pipeline("all", steps).to_code()
    assert (
        "from openhcs_nb.functions import (\n    fill_holes,\n    gaussian_blur,"
        in code
    )


def test_when_function_name_is_not_an_identifier_then_codegen_refuses():
    odd = Function("not-an-identifier", "1", lambda s, **k: s, "odd", "x")
    with pytest.raises(PipelineError, match="cannot be written as a Python name"):
        Pipeline("x", [Step(odd, name="s")]).to_code()


def test_when_step_alone_then_step_to_code_is_the_step_expression(catalogue):
    step = nuclei(catalogue).steps[1]
    assert step_to_code(step) == (
        'Step(name="measure", func=measure_objects, variable_components=["channel"])'
    )


def test_when_fixed_pipelines_are_generated_then_ruff_format_leaves_them_unchanged(
    catalogue, tmp_path
):
    codes = [
        nuclei(catalogue).to_code(),
        wide(catalogue).to_code(),
        Pipeline("e").to_code(),
    ]
    # Names and keys that put lines exactly at, just under and just over 88 columns.
    g = catalogue["gaussian_blur"]
    for width in range(20, 95):
        name = "n" * width
        codes.append(Pipeline(name, [Step((g, {"sigma": 2.5}), name="s")]).to_code())
        step = Step(
            {"k" * width: g, "核" * (width // 2): [g, g]}, name="s", group_by="channel"
        )
        codes.append(Pipeline("p", [step]).to_code())
        m = catalogue["measure_objects"]
        long_value = (m, {"prefix": "v" * width, "intensity": False})
        step = Step([long_value, (g, {"sigma": 3.0})], name="s" * (width % 60 + 1))
        codes.append(Pipeline("p" * width, [step]).to_code())
    assert_ruff_clean(tmp_path, codes)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_when_random_pipelines_are_generated_then_ruff_format_leaves_them_unchanged(
    catalogue, tmp_path_factory, data
):
    batch = data.draw(st.lists(pipelines(catalogue), min_size=25, max_size=25))
    assert_ruff_clean(tmp_path_factory.mktemp("ruff"), [p.to_code() for p in batch])


@settings(max_examples=200, deadline=None)
@given(text=TRICKY_TEXT.filter(str.strip))
def test_when_names_hold_quotes_escapes_or_unicode_then_the_code_is_valid_python(text):
    import ast

    code = Pipeline(text).to_code()
    tree = ast.parse(code)
    call = tree.body[-1].value
    assert ast.literal_eval(call.keywords[0].value) == text
