"""Defaults for a step added from the catalogue, so it validates as it comes.

A segmentation function works on one channel: its new step is per channel on
the first channel no earlier segmentation step uses (the first channel for
the first one). A measurement sees one field at a time, so its step stacks
only ``channel``. A labels reference names an existing labels set: the latest
one, or for a function that already works on objects (whose input is the
latest labels) the one before it. Optional references (a parent, children)
stay empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openhcs_nb.jupyter._builder_checks import (
    is_optional,
    labels_params,
    measures,
    segments,
)


@dataclass(frozen=True)
class NewStep:
    """How a new step starts: stacking, channel choice and call kwargs."""

    variable_components: tuple[str, ...] = ("site",)
    channel: int | str | None = None  # None: not per channel
    kwargs: dict[str, Any] = field(default_factory=dict)


def new_step(
    info: Any,
    local: Mapping[str, Any],
    labels: Sequence[str],
    used_channels: Sequence[int | str],
    channel_keys: Sequence[int | str],
) -> NewStep:
    """The defaults for a new step calling ``info`` after the existing steps.

    ``labels`` are the earlier labels steps in order, ``used_channels`` the
    channels earlier segmentation steps picked, ``channel_keys`` the
    Channel dropdown's keys.
    """
    kwargs: dict[str, Any] = {}
    refs = list(labels)
    if info.input == "labels" and len(refs) > 1:
        refs = refs[:-1]  # the input is the latest set; refer to an earlier one
    for param in labels_params(info):
        if refs and not is_optional(local, info.name, param.name):
            kwargs[param.name] = refs[-1]
    if measures(info):
        return NewStep(variable_components=("channel",), kwargs=kwargs)
    if segments(info) and channel_keys:
        free = [k for k in channel_keys if k not in set(used_channels)]
        return NewStep(channel=(free or list(channel_keys))[0], kwargs=kwargs)
    return NewStep(kwargs=kwargs)
