"""One widget per catalogue parameter, chosen from its type and range.

The catalogue is the server's (``ParamInfo`` records), so the controls match
what the server will accept. ``int`` and ``float`` parameters with both bounds
become sliders when the range is narrow enough to aim at (a step of 1 for
ints, a round step giving about a thousand positions for floats), bounded
number boxes when it is wider, and plain number boxes when unbounded. ``bool``
is a checkbox; ``choice`` a dropdown of the allowed values; ``str`` and
``labels`` (the name of an earlier labels step, empty for the latest) are text
boxes. The parameter's help is the tooltip. Values are checked again, with the
local catalogue, when the pipeline is built; nothing here decides what is valid.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import ipywidgets as widgets

#: An integer slider wider than this has too many positions to aim with.
MAX_INT_SLIDER_SPAN = 10_000
#: A float slider wider than this would need steps coarser than users tune by.
MAX_FLOAT_SLIDER_SPAN = 1_000.0


class ParamLike(Protocol):
    """What a control needs to know (``ParamInfo`` or the core ``Param``)."""

    name: str
    type: str
    default: Any
    help: str
    min: float | None
    max: float | None


def float_step(low: float, high: float) -> float:
    """A round slider step giving about a thousand positions over the range."""
    span = high - low
    if span <= 0:
        return 0.1
    return 10.0 ** math.floor(math.log10(span / 1000))


def param_control(param: ParamLike) -> widgets.ValueWidget:
    """The control for ``param``, set to its default (or a neutral value).

    Raises
    ------
    ValueError
        The parameter type is not one the catalogue defines.
    """
    required = param.default is None
    label = f"{param.name}*" if required else param.name
    tooltip = param.help + (" (required)" if required else "")
    common: dict[str, Any] = {
        "description": label,
        "tooltip": tooltip,
        "style": {"description_width": "initial"},
    }
    if param.type == "bool":
        return widgets.Checkbox(value=bool(param.default), indent=False, **common)
    if param.type == "choice":
        choices = list(getattr(param, "choices", ()) or ())
        value = param.default if param.default in choices else choices[0]
        return widgets.Dropdown(
            options=[(str(c), c) for c in choices], value=value, **common
        )
    if param.type == "int":
        return _int_control(param, required, common)
    if param.type == "float":
        return _float_control(param, required, common)
    if param.type in ("str", "labels"):
        placeholder = "latest labels" if param.type == "labels" else ""
        return widgets.Text(
            value="" if required else str(param.default),
            placeholder=placeholder,
            continuous_update=False,
            **common,
        )
    raise ValueError(
        f"parameter {param.name!r} has type {param.type!r}; expected one of "
        "int, float, bool, choice, str, labels"
    )


def _int_control(
    param: ParamLike, required: bool, common: dict[str, Any]
) -> widgets.ValueWidget:
    """A slider over a narrow range, else a (bounded) number box."""
    low, high = param.min, param.max
    value = int(param.default) if not required else int(low or 0)
    if low is None or high is None:
        return widgets.IntText(value=value, **common)
    bounds = {"min": math.ceil(low), "max": math.floor(high)}
    if high - low <= MAX_INT_SLIDER_SPAN:
        return widgets.IntSlider(
            value=value, continuous_update=False, **bounds, **common
        )
    return widgets.BoundedIntText(value=value, **bounds, **common)


def _float_control(
    param: ParamLike, required: bool, common: dict[str, Any]
) -> widgets.ValueWidget:
    """A slider with a round step over a narrow range, else a number box."""
    low, high = param.min, param.max
    value = float(param.default) if not required else float(low or 0.0)
    if low is None or high is None:
        return widgets.FloatText(value=value, **common)
    bounds = {"min": float(low), "max": float(high)}
    if high - low <= MAX_FLOAT_SLIDER_SPAN:
        return widgets.FloatSlider(
            value=value,
            step=float_step(float(low), float(high)),
            readout_format=".4g",
            continuous_update=False,
            **bounds,
            **common,
        )
    return widgets.BoundedFloatText(value=value, **bounds, **common)


def control_value(control: widgets.ValueWidget, param: ParamLike) -> Any:
    """The control's value as the parameter's Python type."""
    value = control.value
    if param.type == "int":
        return int(value)
    if param.type == "float":
        return float(value)
    if param.type == "bool":
        return bool(value)
    if param.type in ("str", "labels"):
        return str(value)
    return value


def set_control(control: widgets.ValueWidget, value: Any) -> None:
    """Show ``value`` in ``control`` (used when loading an existing pipeline)."""
    control.value = value
