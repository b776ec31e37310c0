from __future__ import annotations

import dataclasses

import pytest

from openhcs_nb.errors import PipelineError
from openhcs_nb.pipeline import Function, Pipeline, Step


@pytest.fixture
def g(catalogue) -> Function:
    return catalogue["gaussian_blur"]


def error_of(build) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        build()
    return info.value


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"radius": 1}, "radius", "unknown parameter for gaussian_blur (known: sigma)"),
        ({"sigma": "wide"}, "sigma", "expected float, got str 'wide'"),
        ({"sigma": True}, "sigma", "expected float, got bool True"),
        ({"sigma": None}, "sigma", "None is not allowed"),
        ({"sigma": -0.5}, "sigma", "must be >= 0.0, got -0.5"),
        ({"sigma": 51}, "sigma", "must be <= 50.0, got 51.0"),
        ({"sigma": float("nan")}, "sigma", "must be finite, got nan"),
    ],
)
def test_when_parameter_is_invalid_then_error_names_step_and_field(
    g, kwargs, field, message
):
    error = error_of(lambda: Step((g, kwargs), name="blur"))
    assert (error.step, error.field, error.reason) == ("blur", field, message)
    assert str(error) == f"step 'blur', field '{field}': {message}"


@pytest.mark.parametrize(
    ("name", "kwargs", "field", "message"),
    [
        ("fill_holes", {"max_size": 1.5}, "max_size", "expected int, got float 1.5"),
        ("label", {"connectivity": 3}, "connectivity", "must be one of [1, 2], got 3"),
        ("measure_objects", {"prefix": 1}, "prefix", "expected str, got int 1"),
        ("normalize", {"clip": 1}, "clip", "expected bool, got int 1"),
        (
            "crop",
            {},
            "size",
            "crop needs a value for this parameter (it has no default)",
        ),
        ("crop", {"size": None}, "size", "a value is required"),
    ],
)
def test_when_typed_parameter_gets_a_wrong_value_then_the_message_says_why(
    catalogue, name, kwargs, field, message
):
    error = error_of(lambda: Step((catalogue[name], kwargs), name="s"))
    assert (error.field, error.reason) == (field, message)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"variable_components": ["well"]}, "variable_components", "wells are always"),
        (
            {"variable_components": ["x"]},
            "variable_components",
            "unknown component 'x'",
        ),
        ({"variable_components": []}, "variable_components", "at least one component"),
        (
            {"variable_components": ["z", "z"]},
            "variable_components",
            "component 'z' is listed twice",
        ),
        ({"variable_components": 3}, "variable_components", "expected a list"),
        ({"group_by": "plate"}, "group_by", "must be one of"),
        ({"name": "two words"}, "name", "step names are 1-64"),
        ({"name": "trailing\n"}, "name", "step names are 1-64"),
        ({"name": "x" * 65}, "name", "step names are 1-64"),
        ({"name": 7}, "name", "step names are 1-64"),
    ],
)
def test_when_step_fields_are_invalid_then_error_names_the_field(
    g, fields, field, message
):
    error = error_of(lambda: Step(g, **{"name": "s", **fields}))
    assert error.field == field
    assert error.reason.startswith(message)


@pytest.mark.parametrize(
    ("func", "fields", "message"),
    [
        ({0: "G"}, {}, "a dict pattern needs group_by"),
        ({0: "G"}, {"group_by": "site"}, "cannot group by 'site' while also stacking"),
        ({}, {"group_by": "channel"}, "a dict pattern needs at least one key"),
        ({-1: "G"}, {"group_by": "channel"}, "index keys must be >= 0"),
        ({True: "G"}, {"group_by": "channel"}, "dict keys are channel names"),
        ({1.5: "G"}, {"group_by": "channel"}, "dict keys are channel names"),
        ([], {}, "a chain needs at least one function"),
        (("G", {}, {}), {}, "a call is written (function, {kwargs}), a 2-tuple"),
        ("G_not", {}, "is not a catalogue function"),
        (("G", {1: 2}), {}, "must be a dict with str keys"),
    ],
)
def test_when_pattern_is_malformed_then_error_explains_the_shape(
    g, func, fields, message
):
    def fill(value):
        if value == "G":
            return g
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(fill(v) for v in value)
        return value

    error = error_of(lambda: Step(fill(func), name="s", **fields))
    assert message in error.reason


def test_when_step_names_repeat_then_pipeline_is_refused(g):
    error = error_of(lambda: Pipeline("p", [Step(g, name="a"), Step(g, name="a")]))
    assert (error.step, error.reason) == (
        "a",
        "step names must be unique within a pipeline",
    )


@pytest.mark.parametrize(
    ("name", "steps", "message"),
    [
        ("", (), "a pipeline needs a non-empty name"),
        ("  ", (), "a pipeline needs a non-empty name"),
        (None, (), "a pipeline needs a non-empty name"),
        ("p", (1,), "steps[0] must be a Step, got int"),
        ("p", "abc", "steps must be a list of Steps, got str"),
    ],
)
def test_when_pipeline_fields_are_invalid_then_it_is_refused(name, steps, message):
    assert error_of(lambda: Pipeline(name, steps)).reason == message


def test_when_the_same_step_is_spelled_differently_then_steps_are_equal(catalogue, g):
    t = catalogue["threshold_otsu"]
    canonical = Step(g, name="s")
    assert Step((g, {}), name="s") == canonical
    assert Step([g], name="s") == canonical
    assert Step([(g, {"sigma": 1.0})], name="s") == canonical
    assert Step(g, name="s", variable_components="site") == canonical
    assert Step(g, name="s", variable_components=("site",)) == canonical
    assert Step(g) == Step(g, name="gaussian_blur")
    assert Step((g, {"sigma": 2}), name="s") == Step((g, {"sigma": 2.0}), name="s")
    assert Step({0: [g, t]}, name="s", group_by="channel") == Step(
        {0: [(g, {}), t]}, name="s", group_by="channel"
    )
    assert Step((g, {"sigma": 2}), name="s").func == (g, {"sigma": 2.0})
    assert Step([g, (t, {})], name="s").func == [g, t]
    assert Step(Step([g], name="s").func, name="s") == canonical
    assert Step((g, {"sigma": 2.0}), name="s") != canonical
    assert Step(g, name="s", group_by="channel") != canonical
    assert hash(Step([g], name="s")) == hash(canonical)


def test_when_step_is_frozen_then_it_cannot_be_changed(g):
    with pytest.raises(dataclasses.FrozenInstanceError):
        Step(g, name="s").name = "t"  # type: ignore[misc]


def test_when_pipeline_is_edited_then_copies_change_and_the_original_does_not(
    catalogue, g
):
    t = catalogue["threshold_otsu"]
    p = Pipeline("p", [Step(g, name="a"), Step(t, name="b")])
    replaced = p.with_step(Step((g, {"sigma": 3.0}), name="a"))
    assert [s.name for s in replaced.steps] == ["a", "b"]
    assert replaced.step("a").func == (g, {"sigma": 3.0})
    assert p.step("a").func is g
    assert [s.name for s in p.with_step(Step(t, name="c")).steps] == ["a", "b", "c"]
    assert [s.name for s in p.with_step(Step(t, name="c"), 0).steps] == ["c", "a", "b"]
    assert [s.name for s in p.without_step("a").steps] == ["b"]
    assert p.upto(1) == Pipeline("p", [Step(g, name="a")])
    assert p.upto(0) == Pipeline("p")
    assert len(p) == 2
    with pytest.raises(KeyError, match="no step 'zz'"):
        p.without_step("zz")
    with pytest.raises(PipelineError, match="upto must be between 0 and 2, got 3"):
        p.upto(3)


def test_when_functions_share_name_and_version_then_they_are_equal(g):
    twin = Function("gaussian_blur", "1", lambda s, **k: s, "other help", "other")
    newer = Function("gaussian_blur", "2", lambda s, **k: s, "newer", "filters")
    assert twin == g and hash(twin) == hash(g)
    assert newer != g
