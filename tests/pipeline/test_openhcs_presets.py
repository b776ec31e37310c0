"""OpenHCS 0.8 preset scripts through the compat loader.

The fixtures follow the shape of two small presets shipped in openhcs 0.8.6
(an editor-saved script with a pyclesperanto blur and a stack normalisation,
and a demo script using ``processing_config=LazyProcessingConfig(...)``),
rewritten here with other values; the package itself is never vendored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.pipeline import Catalogue, Function, Param, load_openhcs_script

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import openhcs_presets

# Figure reported for openhcs 0.8.6 (see docs/benchmarks.md).
EXPECTED_LOADED = 1
EXPECTED_SCRIPTS = 21

EDITOR_STYLE = """\
# Edit this pipeline and save to apply changes
from openhcs.core.config import LazyNapariStreamingConfig
from openhcs.core.steps.function_step import FunctionStep
from openhcs.processing.backends.processors.numpy_processor import (
    stack_percentile_normalize as normalise,
)
from openhcs.pyclesperanto import gaussian_blur, top_hat

pipeline_steps = []

step_1 = FunctionStep(
    func=[
        (top_hat, {"slice_by_slice": True, "radius_x": 25.0, "radius_y": 25.0}),
        (gaussian_blur, {"sigma_x": 1.5, "sigma_y": 1.5}),
        (normalise, {"low_percentile": 0.5, "high_percentile": 99.5}),
    ],
    name="Clean up",
    napari_streaming_config=LazyNapariStreamingConfig(well_filter="7"),
)
pipeline_steps.append(step_1)
"""

NEW_STYLE = """\
from openhcs.constants.constants import GroupBy, VariableComponents
from openhcs.constants.input_source import InputSource
from openhcs.core.config import (
    LazyProcessingConfig,
    LazyStepMaterializationConfig,
    PipelineConfig,
)
from openhcs.core.steps.function_step import FunctionStep
from openhcs.processing.backends.processors.numpy_processor import (
    NumpyStackProjectionMethod,
    create_composite,
    create_projection,
    tophat,
)

pipeline_config = PipelineConfig()
pipeline_steps = []

step_1 = FunctionStep(
    func=create_projection,
    name="Flatten Z",
    processing_config=LazyProcessingConfig(
        variable_components=[VariableComponents.Z_INDEX]
    ),
)
pipeline_steps.append(step_1)

step_2 = FunctionStep(
    func={"2": (tophat, {"selem_radius": 15, "downsample_factor": 2})},
    name="background",
    processing_config=LazyProcessingConfig(input_source=InputSource.PREVIOUS_STEP),
    step_materialization_config=LazyStepMaterializationConfig(),
)
pipeline_steps.append(step_2)

step_3 = FunctionStep(
    func=(create_projection, {"method": NumpyStackProjectionMethod.MEAN}),
    name="mean",
    processing_config=LazyProcessingConfig(
        variable_components=[VariableComponents.SITE], group_by=GroupBy.NONE
    ),
)
pipeline_steps.append(step_3)

step_4 = FunctionStep(
    func=create_composite,
    name="composite",
    processing_config=LazyProcessingConfig(
        variable_components=[VariableComponents.CHANNEL]
    ),
)
pipeline_steps.append(step_4)
"""


def _calls(step: object) -> list[tuple[str, dict[str, object]]]:
    return [
        (call.name, call.kwargs_dict())
        for _, chain in step.chains  # type: ignore[attr-defined]
        for call in chain
    ]


def test_when_editor_preset_is_loaded_then_names_and_kwargs_are_translated() -> None:
    pipeline = load_openhcs_script(EDITOR_STYLE, builtin_catalogue())
    (step,) = pipeline.steps
    assert step.name == "Clean_up"
    assert _calls(step) == [
        ("subtract_background", {"radius": 25, "method": "tophat"}),
        ("gaussian_blur", {"sigma": 1.5}),
        ("percentile_normalize", {"low": 0.5, "high": 99.5}),
    ]


def test_when_processing_config_is_used_then_grouping_comes_from_it() -> None:
    steps = load_openhcs_script(NEW_STYLE, builtin_catalogue()).steps
    flatten, background, mean, composite = steps
    assert flatten.variable_components == ("z",)
    assert _calls(flatten) == [("project_z", {})]
    # A dict pattern without group_by groups by channel, as in OpenHCS.
    assert (background.group_by, background.chains[0][0]) == ("channel", "2")
    assert _calls(background) == [
        ("subtract_background", {"radius": 15, "method": "tophat"})
    ]
    assert _calls(mean) == [("project_z", {"method": "mean"})]
    assert mean.group_by is None
    assert composite.variable_components == ("channel",)
    assert _calls(composite) == [("composite_channels", {})]  # mean is the default


REFUSED = [
    (
        EDITOR_STYLE.replace('"sigma_y": 1.5', '"sigma_y": 3.0'),
        "sigma_x=1.5 and sigma_y=3.0 differ",
        '"sigma_y"',
    ),
    (
        EDITOR_STYLE.replace('"high_percentile": 99.5', '"target_max": 1.0'),
        "target_max=1.0) has no openhcs-nb equivalent",
        '"target_max"',
    ),
    (
        EDITOR_STYLE.replace('"slice_by_slice": True, ', '"radius_z": 4.0, '),
        "radius_z=4.0",
        '"radius_z"',
    ),
    (
        NEW_STYLE.replace("PREVIOUS_STEP", "PIPELINE_START"),
        "InputSource.PIPELINE_START",
        "InputSource.PIPELINE_START",
    ),
    (
        NEW_STYLE.replace(
            "func=create_projection,\n    name=",
            "func=create_projection,\n"
            "    variable_components=[VariableComponents.SITE],\n    name=",
        ),
        "variable_components is given both on the step and in processing_config",
        "[VariableComponents.Z_INDEX]",
    ),
    (
        NEW_STYLE.replace("PipelineConfig()", "PipelineConfig(num_workers=4)"),
        "does not accept 'num_workers'",
        "num_workers",
    ),
    (
        NEW_STYLE.replace(
            "NumpyStackProjectionMethod.MEAN", "NumpyStackProjectionMethod.MIN"
        ),
        "NumpyStackProjectionMethod.MIN has no counterpart",
        "(create_projection",
    ),
]


@pytest.mark.parametrize(("code", "reason", "at"), REFUSED)
def test_when_preset_asks_for_what_we_cannot_do_then_it_is_refused_there(
    code: str, reason: str, at: str
) -> None:
    with pytest.raises(PipelineCodeError) as info:
        load_openhcs_script(code, builtin_catalogue())
    error = info.value
    assert reason in error.reason
    line = code.splitlines()[error.line - 1]
    assert line[error.col - 1 :].startswith(at), (error, line)


COUNTING = """\
from openhcs.core.steps.function_step import FunctionStep
from openhcs.processing.backends.analysis.cell_counting_cpu import (
    DetectionMethod,
    count_cells_single_channel,
)
pipeline_steps = [
    FunctionStep(
        func=(
            count_cells_single_channel,
            {
                "min_cell_area": 30,
                "detection_method": DetectionMethod.WATERSHED,
                "enable_preprocessing": False,
                "watershed_min_distance": None,
            },
        ),
        name="count",
    )
]
"""


def _catalogue(*, with_identify_primary: bool) -> Catalogue:
    """The built-in functions, with a stand-in identify_primary or without one."""
    base = builtin_catalogue()
    kept = [base[name] for name in base if name != "identify_primary"]
    fake = Function(
        "identify_primary",
        "1",
        lambda stack, **_: stack,
        "Threshold and declump.",
        "segmentation",
        output="labels",
        params=(
            Param("smoothing", "float", 1.0, "blur first", 0.0),
            Param("min_size", "int", 10, "smallest object", 0),
            Param(
                "declump",
                "choice",
                "none",
                "declumping",
                choices=("shape", "intensity", "none"),
            ),
        ),
    )
    return Catalogue([*kept, fake] if with_identify_primary else kept)


def test_when_target_is_missing_then_refusal_names_it_and_maps_once_it_lands() -> None:
    with pytest.raises(PipelineCodeError, match="would map to 'identify_primary'"):
        load_openhcs_script(COUNTING, _catalogue(with_identify_primary=False))
    catalogue = _catalogue(with_identify_primary=True)
    (step,) = load_openhcs_script(COUNTING, catalogue).steps
    assert _calls(step) == [
        ("identify_primary", {"min_size": 30, "declump": "shape", "smoothing": 0.0})
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("WATERSHED", "detection_method=DetectionMethod.BLOB_LOG has no counterpart"),
        ('"detection_method": DetectionMethod.WATERSHED', "needs detection_method="),
    ],
)
def test_when_counting_mode_has_no_counterpart_then_it_is_refused(
    change: str, reason: str
) -> None:
    replacement = "BLOB_LOG" if change == "WATERSHED" else '"overlap": 0.5'
    code = COUNTING.replace(change, replacement)
    with pytest.raises(PipelineCodeError, match=reason):
        load_openhcs_script(code, _catalogue(with_identify_primary=True))


@pytest.fixture(scope="module")
def wheel() -> Path:
    path = openhcs_presets.find_wheel(download=True)
    if path is None:
        pytest.skip("openhcs 0.8.6 wheel not cached and pip cannot fetch it")
    return path


def test_when_every_shipped_preset_is_loaded_then_the_reported_count_loads(
    wheel: Path,
) -> None:
    results = openhcs_presets.load_presets(openhcs_presets.preset_sources(wheel))
    assert len(results) == EXPECTED_SCRIPTS
    assert sum(r.loaded for r in results) == EXPECTED_LOADED, openhcs_presets.report(
        results
    )
    assert all(r.reason for r in results if not r.loaded)


def test_when_name_table_source_is_inspected_then_it_never_executes_code() -> None:
    import ast

    import openhcs_nb.pipeline._openhcs_names as names

    banned = {"exec", "eval", "compile", "__import__", "import_module", "getattr"}
    tree = ast.parse(Path(names.__file__).read_text(encoding="utf-8"))
    called = {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name | ast.Attribute)
    }
    assert not called & banned
