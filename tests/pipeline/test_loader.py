from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hostile_corpus import CORPUS, HEAD, Hostile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_strategies import pipelines
from ruff_check import assert_ruff_clean

import openhcs_nb.pipeline as pipeline_pkg
from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.pipeline import (
    Catalogue,
    Function,
    Param,
    Pipeline,
    Step,
    load_pipeline,
)


def refusal(code: str, catalogue: Catalogue) -> PipelineCodeError:
    with pytest.raises(PipelineCodeError) as info:
        load_pipeline(code, catalogue)
    return info.value


def test_when_corpus_is_counted_then_it_holds_at_least_sixty_cases():
    assert len(CORPUS) >= 60


@pytest.mark.parametrize(
    "case", CORPUS, ids=[f"{i:03d}-{c.reason[:40]}" for i, c in enumerate(CORPUS)]
)
def test_when_code_is_hostile_then_it_is_refused_at_the_offending_node(
    case: Hostile, catalogue
):
    error = refusal(case.code, catalogue)
    assert case.reason in error.reason
    assert f"line {error.line}, column {error.col}: " in str(error)
    lines = re.split(r"\r\n|\r|\n", case.code)
    assert 1 <= error.line <= len(lines)
    assert error.col >= 1
    if case.at is not None:
        pointed = lines[error.line - 1][error.col - 1 :]
        assert pointed.startswith(case.at), (error, pointed[:40])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_when_pipeline_is_written_and_read_then_it_round_trips_byte_for_byte(
    catalogue, data
):
    p = data.draw(pipelines(catalogue))
    code = p.to_code()
    loaded = load_pipeline(code, catalogue)
    assert loaded == p
    assert loaded.to_code() == code


def test_when_code_is_spelled_by_hand_then_it_loads_like_the_generated_code(catalogue):
    code = '''"""Nuclei, written by hand."""
from openhcs_nb.functions import threshold_otsu, gaussian_blur  # any order
from openhcs_nb import Step
from openhcs_nb import Pipeline

my_pipeline = Pipeline(
    "nuclei",
    (
        Step({0: [(gaussian_blur, {'sigma': +1.5}), threshold_otsu]},
             group_by='channel', name='nuclei'),
        Step(func=(gaussian_blur, {"sigma": 2}), name="blur", variable_components="z"),
    ),
)
'''
    p = load_pipeline(code, catalogue)
    g, t = catalogue["gaussian_blur"], catalogue["threshold_otsu"]
    assert p == Pipeline(
        "nuclei",
        [
            Step({0: [(g, {"sigma": 1.5}), t]}, name="nuclei", group_by="channel"),
            Step((g, {"sigma": 2.0}), name="blur", variable_components=["z"]),
        ],
    )
    assert load_pipeline(p.to_code(), catalogue) == p


def test_when_numbers_are_signed_then_the_sign_is_applied(catalogue):
    code = HEAD.replace("threshold_otsu", "crop") + (
        "p = Pipeline('x', [Step((crop, {'size': +7}), name='a'),\n"
        "                   Step((gaussian_blur, {'sigma': -0.0}), name='b')])\n"
    )
    p = load_pipeline(code, catalogue)
    assert p.steps[0].chains[0][1][0].kwargs == (("size", 7),)
    assert refusal(code.replace("+7", "-7"), catalogue).reason.endswith(
        "must be >= 1, got -7"
    )


def test_when_error_follows_non_ascii_text_then_column_counts_characters(catalogue):
    code = HEAD + 'pipeline = Pipeline(name="核細胞é", steps=[oops])\n'
    error = refusal(code, catalogue)
    assert (error.line, error.col) == (3, code.splitlines()[2].index("oops") + 1)


def test_when_syntax_error_follows_non_ascii_text_then_column_counts_characters(
    catalogue,
):
    error = refusal('x = "核細胞" + $\n', catalogue)
    assert (error.line, error.col) == (1, 13)
    assert error.reason.startswith("syntax error")


@pytest.mark.parametrize("code", [b"from openhcs_nb import Pipeline", None, 42])
def test_when_code_is_not_text_then_it_is_refused(code, catalogue):
    error = refusal(code, catalogue)  # type: ignore[arg-type]
    assert "must be str" in error.reason
    assert (error.line, error.col) == (1, 1)


def test_when_loading_then_no_catalogue_function_is_ever_called():
    def explode(stack, **kwargs):
        raise AssertionError("a catalogue function ran while loading")

    trap = Catalogue(
        [
            Function(
                "trap",
                "1",
                explode,
                "never runs",
                "x",
                params=(Param("n", "int", 1, "n"),),
            )
        ]
    )
    p = load_pipeline(
        "from openhcs_nb import Pipeline, Step\n"
        "from openhcs_nb.functions import trap\n"
        "pipeline = Pipeline(name='t', steps=[Step(func=(trap, {'n': 2}))])\n",
        trap,
    )
    assert p.steps[0].name == "trap"


def test_when_loader_source_is_inspected_then_it_never_executes_code():
    package = Path(pipeline_pkg.__file__).parent
    banned = {"exec", "eval", "compile", "__import__", "import_module", "breakpoint"}
    for name in (
        "loader.py",
        "_ast_reader.py",
        "_ast_statements.py",
        "_openhcs_compat.py",
    ):
        tree = ast.parse((package / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in banned, (name, func.id)
            elif isinstance(func, ast.Attribute) and func.attr in banned:
                owner = func.value
                # re.compile builds a regular expression, nothing else.
                assert isinstance(owner, ast.Name) and owner.id == "re", (
                    name,
                    func.attr,
                )


LITERALS = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**60), 2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
        st.sampled_from(["site", "channel", "z", "t", "well", "sigma"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.text(max_size=5), st.integers(0, 5)), inner, max_size=3
        ),
    ),
    max_leaves=12,
)
FUNC_SOURCE = st.one_of(
    st.sampled_from(
        [
            "gaussian_blur",
            "threshold_otsu",
            "[gaussian_blur]",
            "(gaussian_blur, {'sigma': 2})",
            "{0: threshold_otsu}",
        ]
    ),
    LITERALS.map(repr),
)


@settings(max_examples=300, deadline=None)
@given(
    func=FUNC_SOURCE,
    name=LITERALS.map(repr),
    variable=LITERALS.map(repr),
    group_by=LITERALS.map(repr),
)
def test_when_step_arguments_are_arbitrary_literals_then_only_code_errors_escape(
    catalogue, func, name, variable, group_by
):
    code = HEAD + (
        f"pipeline = Pipeline(name={name}, steps=[Step(func={func}, name={name}, "
        f"variable_components={variable}, group_by={group_by})])\n"
    )
    try:
        result = load_pipeline(code, catalogue)
    except PipelineCodeError as error:
        assert error.line >= 1 and error.col >= 1
    else:
        assert isinstance(result, Pipeline)


def test_when_builtin_catalogue_exists_then_its_pipelines_round_trip(tmp_path):
    functions = pytest.importorskip(
        "openhcs_nb.functions", reason="openhcs_nb.functions is not written yet"
    )
    if not hasattr(functions, "builtin_catalogue"):
        pytest.skip("openhcs_nb.functions.builtin_catalogue is not written yet")
    catalogue = functions.builtin_catalogue()
    samples = {"int": 1, "float": 1.0, "bool": True, "str": "x"}
    steps = []
    for i, fn in enumerate(catalogue.values()):
        kwargs = {
            p.name: p.default
            if p.default is not None
            else (p.choices[0] if p.choices else max(samples[p.type], p.min or 0))
            for p in fn.params
        }
        steps.append(Step((fn, kwargs), name=f"s{i}"))
    p = Pipeline("builtin", steps)
    code = p.to_code()
    assert load_pipeline(code, catalogue) == p
    assert load_pipeline(code, catalogue).to_code() == code
    # The code is plain Python too: run (trusted, generated) it for the same value.
    namespace: dict[str, object] = {}
    exec(compile(code, "<generated pipeline>", "exec"), namespace)
    assert namespace["pipeline"] == p
    assert_ruff_clean(tmp_path, [code])


def test_when_default_pipeline_is_written_then_it_loads_back_equal():
    defaults = pytest.importorskip(
        "openhcs_nb.defaults", reason="openhcs_nb.defaults is not written yet"
    )
    builtin = pytest.importorskip("openhcs_nb.functions").builtin_catalogue()
    for channel in (0, "DAPI"):
        p = defaults.nuclei_count_pipeline(channel)
        assert load_pipeline(p.to_code(), builtin) == p
