"""One widget per catalogue parameter, chosen from its type and range.

The catalogue is the server's (``ParamInfo`` records), so the controls match
what the server will accept: ``int`` and ``float`` with both bounds become
sliders, otherwise number boxes; ``bool`` a checkbox; ``choice`` a dropdown
of the allowed values; ``str`` a text box. The parameter's help is the
tooltip. Values are checked again, with the local catalogue, when the
pipeline is built; nothing here decides what is valid.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import ipywidgets as widgets

#: A slider over a wider integer range than this is too coarse to aim with.
MAX_SLIDER_SPAN = 100_000


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
    low, high = param.min, param.max
    bounded = low is not None and high is not None
    if param.type == "bool":
        return widgets.Checkbox(value=bool(param.default), indent=False, **common)
    if param.type == "choice":
        choices = list(getattr(param, "choices", ()) or ())
        value = param.default if param.default in choices else choices[0]
        return widgets.Dropdown(
            options=[(str(c), c) for c in choices], value=value, **common
        )
    if param.type == "int":
        value = int(param.default) if not required else int(low or 0)
        if bounded and high - low <= MAX_SLIDER_SPAN:  # type: ignore[operator]
            return widgets.IntSlider(
                value=value,
                min=int(low),  # type: ignore[arg-type]
                max=int(high),  # type: ignore[arg-type]
                continuous_update=False,
                **common,
            )
        return widgets.IntText(value=value, **common)
    if param.type == "float":
        fvalue = float(param.default) if not required else float(low or 0.0)
        if bounded:
            return widgets.FloatSlider(
                value=fvalue,
                min=float(low),  # type: ignore[arg-type]
                max=float(high),  # type: ignore[arg-type]
                step=float_step(float(low), float(high)),  # type: ignore[arg-type]
                readout_format=".4g",
                continuous_update=False,
                **common,
            )
        return widgets.FloatText(value=fvalue, **common)
    if param.type == "str":
        return widgets.Text(
            value="" if required else str(param.default),
            continuous_update=False,
            **common,
        )
    raise ValueError(
        f"parameter {param.name!r} has type {param.type!r}; expected one of "
        "int, float, bool, choice, str"
    )


def control_value(control: widgets.ValueWidget, param: ParamLike) -> Any:
    """The control's value as the parameter's Python type."""
    value = control.value
    if param.type == "int":
        return int(value)
    if param.type == "float":
        return float(value)
    if param.type == "bool":
        return bool(value)
    return value


def set_control(control: widgets.ValueWidget, value: Any) -> None:
    """Show ``value`` in ``control`` (used when loading an existing pipeline)."""
    control.value = value
