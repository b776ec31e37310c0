from __future__ import annotations

import pytest

from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.pipeline import Pipeline, Step, load_openhcs_script, load_pipeline

IMPORTS = """\
from openhcs.constants.constants import GroupBy, VariableComponents
from openhcs.core.steps.function_step import FunctionStep
from openhcs.processing.backends.processors.numpy_processor import gaussian_blur
from openhcs.processing.backends.analysis.cell_counting_cpu import (
    measure_objects as measure,
)
"""

LIST_SCRIPT = (
    '"""An OpenHCS pipeline."""\n'
    + IMPORTS
    + """
pipeline_steps = [
    FunctionStep(
        func=[(gaussian_blur, {"sigma": 2.0})],
        name="Image Enhancement",
        variable_components=[VariableComponents.SITE],
        force_disk_output=False,
    ),
    FunctionStep(
        func={"1": gaussian_blur, "2": [(measure, {})]},
        name="per channel",
        variable_components=[VariableComponents.Z_INDEX, VariableComponents.TIMEPOINT],
        group_by=GroupBy.CHANNEL,
    ),
]
"""
)

APPEND_SCRIPT = (
    "# Edit this pipeline and save to apply changes\n"
    + IMPORTS
    + """
# Pipeline steps
pipeline_steps = []

# Step 1: blur
step_1 = FunctionStep(
    func=(gaussian_blur, {"sigma": 2.0}),
    name="Image Enhancement",
    variable_components=[VariableComponents.SITE],
)
pipeline_steps.append(step_1)

# Step 2: per channel
step_2 = FunctionStep(
    func={"1": gaussian_blur, "2": measure},
    name="per channel",
    variable_components=[VariableComponents.Z_INDEX, VariableComponents.TIMEPOINT],
    group_by=GroupBy.CHANNEL,
)
pipeline_steps.append(step_2)
"""
)


def expected(catalogue, name: str = "openhcs") -> Pipeline:
    g, m = catalogue["gaussian_blur"], catalogue["measure_objects"]
    return Pipeline(
        name,
        [
            Step((g, {"sigma": 2.0}), name="Image_Enhancement"),
            Step(
                {"1": g, "2": m},
                name="per_channel",
                variable_components=["z", "t"],
                group_by="channel",
            ),
        ],
    )


@pytest.mark.parametrize("script", [LIST_SCRIPT, APPEND_SCRIPT], ids=["list", "append"])
def test_when_openhcs_script_is_loaded_then_steps_map_to_the_catalogue(
    script, catalogue
):
    assert load_pipeline(script, catalogue) == expected(catalogue)
    assert load_openhcs_script(script, catalogue, name="mine") == expected(
        catalogue, "mine"
    )


def test_when_openhcs_pipeline_is_converted_then_native_code_round_trips(catalogue):
    p = load_pipeline(LIST_SCRIPT, catalogue)
    assert load_pipeline(p.to_code(), catalogue) == p


def test_when_group_by_is_none_then_the_step_has_no_grouping(catalogue):
    script = IMPORTS + (
        "pipeline_steps = [FunctionStep(func=gaussian_blur, group_by=GroupBy.NONE,\n"
        "    variable_components=[VariableComponents.CHANNEL])]\n"
    )
    step = load_pipeline(script, catalogue).steps[0]
    assert (step.name, step.group_by, step.variable_components) == (
        "gaussian_blur",
        None,
        ("channel",),
    )


@pytest.mark.parametrize(
    ("name", "sanitised"),
    [("Z Flatten", "Z_Flatten"), ("1st step!", "_1st_step_"), ("  ok-2  ", "ok-2")],
)
def test_when_step_name_is_not_an_identifier_then_it_is_sanitised(
    name, sanitised, catalogue
):
    script = (
        IMPORTS
        + f"pipeline_steps = [FunctionStep(func=gaussian_blur, name={name!r})]\n"
    )
    assert load_pipeline(script, catalogue).steps[0].name == sanitised


REFUSED = [
    (
        "from openhcs.processing.backends.processors.cupy_processor import tophat\n",
        "OpenHCS function 'tophat' has no counterpart in the function catalogue",
        "tophat",
    ),
    (
        "from openhcs.constants.constants import Backend\n",
        "'Backend' cannot be imported from openhcs.constants.constants",
        "Backend",
    ),
    ("import sys\n", "'import sys' is not allowed", "import sys"),
    (
        "from openhcs.core.orchestrator.orchestrator import PipelineOrchestrator\n",
        "imports from 'openhcs.core.orchestrator.orchestrator' are not allowed",
        "from",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur,\n"
        "    variable_components=[VariableComponents.FOO])]\n",
        "VariableComponents has no member 'FOO'",
        "VariableComponents.FOO",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur,\n"
        "    variable_components=[VariableComponents.WELL])]\n",
        "wells are always processed one at a time",
        "[VariableComponents.WELL]",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur, "
        "group_by=FunctionStep.SITE)]\n",
        "attribute access (.SITE)",
        "FunctionStep.SITE",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur, "
        "force_disk_output=True)]\n",
        "force_disk_output=True has no openhcs-nb equivalent",
        "True",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur, "
        "materialization_config=None)]\n",
        "FunctionStep() has no argument 'materialization_config'",
        "materialization_config",
    ),
    (
        IMPORTS + "pipeline_steps = []\npipeline_steps.append(step_9)\n",
        "name 'step_9' is not an imported catalogue function or step",
        "step_9",
    ),
    (
        IMPORTS + "pipeline_steps.append(FunctionStep(func=gaussian_blur))\n",
        "appended to before it is set",
        "pipeline_steps.append",
    ),
    (
        IMPORTS + "pipeline_steps = []\npipeline_steps.extend([])\n",
        "attribute access (.extend)",
        "pipeline_steps.extend",
    ),
    (
        IMPORTS + "pipeline_steps = []\npipeline_steps = []\n",
        "pipeline_steps is assigned twice",
        "pipeline_steps = []",
    ),
    (
        IMPORTS + "step_1 = gaussian_blur\n",
        "only FunctionStep(...) can be assigned to 'step_1'",
        "gaussian_blur",
    ),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur), 1]\n",
        "steps[1] must be a Step, got int",
        "1]",
    ),
    (
        IMPORTS + "pipeline_steps = [gaussian_blur(1)]\n",
        "cannot be called here",
        "gaussian_blur(1)",
    ),
    (
        IMPORTS + "def create_pipeline():\n    return []\n",
        "function definitions",
        "def",
    ),
    (
        IMPORTS + "from openhcs.processing.x import os as gaussian_blur\n",
        "'os' has no counterpart",
        "os as",
    ),
    (
        IMPORTS + "from openhcs.processing.x import threshold_otsu as gaussian_blur\n",
        "name 'gaussian_blur' is imported twice",
        "threshold_otsu as",
    ),
    (
        "from openhcs.processing.x import __builtins__\n",
        "dunder name",
        "__builtins__",
    ),
    (IMPORTS, "no OpenHCS steps found", None),
    (
        IMPORTS + "pipeline_steps = [FunctionStep(func=gaussian_blur, name='a'),\n"
        "    FunctionStep(func=gaussian_blur, name='a')]\n",
        "step names must be unique",
        "FunctionStep(func=gaussian_blur, name='a')]",
    ),
]


@pytest.mark.parametrize(("code", "reason", "at"), REFUSED)
def test_when_openhcs_script_does_more_than_describe_steps_then_it_is_refused(
    code, reason, at, catalogue
):
    with pytest.raises(PipelineCodeError) as info:
        load_openhcs_script(code, catalogue)
    error = info.value
    assert reason in error.reason
    if at is not None:
        line = code.splitlines()[error.line - 1]
        assert line[error.col - 1 :].startswith(at), (error, line)


def test_when_an_enum_is_imported_from_both_modules_then_it_is_the_same_enum(
    catalogue,
):
    script = (
        "from openhcs.constants import VariableComponents\n"
        "from openhcs.constants.constants import VariableComponents\n"
        "from openhcs.core.steps import FunctionStep\n"
        "from openhcs.processing.backends.processors.numpy_processor import label\n"
        "pipeline_steps = [FunctionStep(func=(label, {'connectivity': 2}),\n"
        "    variable_components=[VariableComponents.CHANNEL])]\n"
    )
    step = load_pipeline(script, catalogue).steps[0]
    assert step.variable_components == ("channel",)
    assert step.chains[0][1][0].kwargs == (("connectivity", 2),)
