"""The exported Functions, the built-in catalogue and parameter checking."""

from __future__ import annotations

import importlib
import inspect
import pickle

import numpy as np
import pytest

import openhcs_nb.functions as functions
from openhcs_nb.errors import PipelineError
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.spec import Catalogue, Function

#: Functions whose results changed for the same parameters since version 1.
REVISED = {"measure_objects", "identify_primary", "measure_image_quality"}
REQUIRED = {
    "correct_illumination": ("image", "image"),
    "identify_primary": ("image", "labels"),
    "identify_secondary": ("image", "labels"),
    "identify_tertiary": ("labels", "labels"),
    "filter_objects": ("labels", "labels"),
    "measure_image_quality": ("image", "image"),
    "percentile_normalize": ("image", "image"),
    "gaussian_blur": ("image", "image"),
    "subtract_background": ("image", "image"),
    "threshold_otsu": ("image", "mask"),
    "threshold_li": ("image", "mask"),
    "threshold_manual": ("image", "mask"),
    "fill_holes": ("mask", "mask"),
    "watershed_split": ("mask", "labels"),
    "label_objects": ("mask", "labels"),
    "remove_small_objects": ("labels", "labels"),
    "expand_labels": ("labels", "labels"),
    "measure_objects": ("image", "image"),
    "project_z": ("image", "image"),
    "composite_channels": ("image", "image"),
}
CATEGORIES = {"intensity", "segmentation", "objects", "measure", "projection"}


#: The tuning range of every numeric parameter: wide enough for real plates,
#: narrow enough that a slider over it can be aimed.
RANGES = {
    ("correct_illumination", "smoothing"): (0, 0.5),
    ("identify_primary", "smoothing"): (0, 10),
    ("identify_primary", "threshold_correction"): (0.2, 5),
    ("identify_primary", "min_distance"): (1, 100),
    ("identify_primary", "declump_smoothing"): (0, 20),
    ("identify_primary", "min_size"): (0, 5_000),
    ("identify_primary", "max_size"): (1, 1_000_000),
    ("identify_secondary", "smoothing"): (0, 10),
    ("identify_secondary", "threshold_correction"): (0.2, 5),
    ("identify_secondary", "distance"): (0, 500),
    ("identify_secondary", "regularization"): (0, 10),
    ("filter_objects", "low"): (0, 1_000_000),
    ("filter_objects", "high"): (0, 1_000_000),
    ("measure_objects", "texture_scale"): (1, 32),
    ("measure_objects", "neighbour_distance"): (0, 200),
    ("measure_image_quality", "min_slope"): (-10, 0),
    ("measure_image_quality", "max_saturated"): (0, 1),
    ("percentile_normalize", "low"): (0, 100),
    ("percentile_normalize", "high"): (0, 100),
    ("gaussian_blur", "sigma"): (0, 20),
    ("subtract_background", "radius"): (1, 200),
    ("threshold_manual", "value"): (0, 65_535),
    ("watershed_split", "min_distance"): (1, 100),
    ("remove_small_objects", "min_size"): (0, 5_000),
    ("remove_small_objects", "max_size"): (1, 1_000_000),
    ("expand_labels", "distance"): (0, 200),
    ("composite_channels", "low"): (0, 100),
    ("composite_channels", "high"): (0, 100),
}


def _keyword_defaults(func: object) -> dict[str, object]:
    """Keyword-only defaults of ``func``; None where there is none (required)."""
    return {
        name: None if p.default is inspect.Parameter.empty else p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def test_when_catalogue_built_then_it_holds_every_required_function():
    catalogue = builtin_catalogue()
    assert isinstance(catalogue, Catalogue)
    assert set(catalogue) == set(REQUIRED)
    for name, (kind_in, kind_out) in REQUIRED.items():
        fn = catalogue[name]
        assert (fn.input, fn.output) == (kind_in, kind_out), name
        assert fn.version == ("2" if name in REVISED else "1"), name
        assert fn.category in CATEGORIES
        assert fn.help


def test_when_imported_by_name_then_each_export_is_its_function():
    for name in REQUIRED:
        fn = getattr(functions, name)
        assert isinstance(fn, Function)
        assert fn.name == name
        assert name in functions.__all__


def test_when_catalogue_built_twice_then_the_catalogues_are_independent_but_equal():
    a, b = builtin_catalogue(), builtin_catalogue()
    assert a is not b
    assert list(a) == list(b)
    assert a.categories().keys() <= CATEGORIES


def test_when_impl_defaults_compared_then_they_match_declared_params():
    for fn in builtin_catalogue().values():
        defaults = _keyword_defaults(fn.impl)
        for param in fn.params:
            assert defaults[param.name] == param.default, (fn.name, param.name)
        extra = set(defaults) - {p.name for p in fn.params}
        expected_extra = (
            ({"labels"} if fn.needs_labels else set())
            | ({"names"} if fn.needs_context else set())
            | ({"illumination"} if fn.plate_phase else set())
        )
        assert extra == expected_extra, fn.name


def test_when_gpu_twin_named_then_it_exists_with_the_same_parameters():
    twins = [fn for fn in builtin_catalogue().values() if fn.gpu_impl]
    assert {fn.name for fn in twins} >= {"gaussian_blur", "fill_holes", "label_objects"}
    for fn in twins:
        assert fn.memory_type == "cupy"
        module, _, name = fn.gpu_impl.partition(":")
        twin = getattr(importlib.import_module(module), name)
        assert _keyword_defaults(twin) == _keyword_defaults(fn.impl), fn.name


def test_when_functions_pickled_then_they_round_trip_by_value():
    for fn in builtin_catalogue().values():
        assert pickle.loads(pickle.dumps(fn)) == fn


@pytest.mark.parametrize(
    ("fn", "kwargs", "field"),
    [
        (functions.gaussian_blur, {"sigma": -1.0}, "sigma"),
        (functions.gaussian_blur, {"sigma": "2"}, "sigma"),
        (functions.gaussian_blur, {"radius": 2}, "radius"),
        (functions.subtract_background, {"method": "median"}, "method"),
        (functions.subtract_background, {"radius": 0}, "radius"),
        (functions.label_objects, {"connectivity": 3}, "connectivity"),
        (functions.watershed_split, {"min_distance": 2.5}, "min_distance"),
        (functions.percentile_normalize, {"high": 101.0}, "high"),
        (functions.threshold_manual, {"value": float("nan")}, "value"),
    ],
)
def test_when_kwargs_are_invalid_then_check_kwargs_names_the_field(fn, kwargs, field):
    with pytest.raises(PipelineError) as info:
        fn.check_kwargs(kwargs, step="s1")
    assert info.value.field == field


def test_when_required_value_missing_then_threshold_manual_refuses_to_run():
    with pytest.raises(PipelineError) as info:
        functions.threshold_manual(np.zeros((1, 4, 4), np.float32))
    assert info.value.field == "value"


def test_when_stack_is_not_3d_then_the_error_names_the_function():
    with pytest.raises(PipelineError, match="gaussian_blur expects a 3-D"):
        functions.gaussian_blur(np.zeros((4, 4), np.float32))
    with pytest.raises(PipelineError, match="empty stack"):
        functions.fill_holes(np.zeros((0, 4, 4), bool))


def test_when_a_measure_function_is_called_directly_then_labels_and_names_pass_through():
    import numpy as np

    from openhcs_nb.functions import measure_objects

    stack = np.zeros((2, 16, 16), np.uint16)
    stack[0, 2:6, 2:6] = 10
    stack[1, 2:6, 2:6] = 30
    labels = np.zeros((16, 16), np.int32)
    labels[2:6, 2:6] = 1
    _, side = measure_objects(stack, labels=labels, names=("a", "b"))
    table = side["objects"]
    assert list(table["area"]) == [16]
    assert list(table["intensity_mean_b"]) == [30.0]


def test_when_params_are_derived_then_every_number_has_its_tuning_range():
    numeric = {
        (fn.name, p.name): (p.min, p.max)
        for fn in builtin_catalogue().values()
        for p in fn.params
        if p.type in ("int", "float")
    }
    assert numeric == RANGES


def test_when_params_are_derived_then_help_comes_from_the_annotation():
    for fn in builtin_catalogue().values():
        assert fn.derived, fn.name
        for param in fn.params:
            assert param.help, (fn.name, param.name)
    assert functions.gaussian_blur.param_index["sigma"].help == (
        "standard deviation in pixels"
    )
    assert functions.label_objects.param_index["connectivity"].choices == (1, 2)


def test_when_a_value_is_out_of_range_then_the_message_names_the_rule():
    with pytest.raises(PipelineError) as info:
        functions.subtract_background.check_kwargs({"radius": 201}, step="bg")
    assert (info.value.step, info.value.field) == ("bg", "radius")
    assert info.value.reason == "must be <= 200, got 201"
    with pytest.raises(PipelineError, match=r"must be one of \['max', 'mean'\]"):
        functions.project_z.check_kwargs({"method": "median"})


def test_when_schema_is_asked_then_it_mirrors_the_params():
    for fn in builtin_catalogue().values():
        schema = fn.schema()
        assert schema["title"] == fn.name
        assert list(schema["properties"]) == [p.name for p in fn.params]
        for param in fn.params:
            prop = schema["properties"][param.name]
            assert prop["description"] == param.help
            if param.min is not None:
                assert (prop["minimum"], prop["maximum"]) == (param.min, param.max)
            if param.choices:
                assert set(prop["enum"]) == set(param.choices)  # msgspec sorts
            assert prop.get("default") == param.default
    assert functions.threshold_manual.schema()["required"] == ["value"]
