"""Shared checks for the built-in functions.

Every function receives a 3-D ``(n, y, x)`` stack and treats its planes
independently. Problems with the input itself (wrong rank, mismatched labels)
are raised as :class:`~openhcs_nb.errors.PipelineError` naming the function and
the offending field, so a failing well reports exactly what was wrong.
"""

from __future__ import annotations

import numpy as np

from openhcs_nb.errors import PipelineError

# 8-connectivity in 2-D: used wherever objects are grown or merged, because
# nuclei that touch only at a corner are still one blob to split.
FULL_2D: np.ndarray = np.ones((3, 3), dtype=bool)


def as_stack(stack: object, function: str) -> np.ndarray:
    """Return ``stack`` as a 3-D ndarray without copying.

    Raises
    ------
    PipelineError
        The value is not three-dimensional, or has no planes.
    """
    arr = np.asarray(stack)
    if arr.ndim != 3:
        raise PipelineError(
            f"{function} expects a 3-D (n, y, x) stack, got shape {arr.shape}",
            field="stack",
        )
    if arr.shape[0] == 0:
        raise PipelineError(f"{function} got an empty stack (0 planes)", field="stack")
    return arr


def as_labels_plane(
    labels: object, shape: tuple[int, int], function: str
) -> np.ndarray:
    """Return the 2-D label image that goes with planes of ``shape``.

    A ``(1, y, x)`` labels stack is accepted too, since that is what a
    labelling step produces for one field.

    Raises
    ------
    PipelineError
        No labels were given, or their shape does not match the planes.
    """
    if labels is None:
        raise PipelineError(
            f"{function} needs a labels image; run a labelling step before it",
            field="labels",
        )
    arr = np.asarray(labels)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape != shape:
        raise PipelineError(
            f"{function} needs labels of shape {shape} (or (1, *{shape})), "
            f"got {arr.shape}",
            field="labels",
        )
    if arr.dtype.kind not in "iub":
        raise PipelineError(
            f"{function} needs integer labels, got dtype {arr.dtype}",
            field="labels",
        )
    return arr


def check_order(low: float, high: float, function: str, names: tuple[str, str]) -> None:
    """Reject a (low, high) pair given the wrong way round.

    Raises
    ------
    PipelineError
        ``low`` is not below ``high``.
    """
    if not low < high:
        raise PipelineError(
            f"{function}: {names[0]}={low} must be below {names[1]}={high}",
            field=names[0],
        )


class NamedLabels(np.ndarray):
    """Labels planes that remember which labels set they came from.

    The runner hands a labels-name parameter its planes as this array, so a
    function can name its columns after the set (``parent_nuclei``).
    """

    labels_name: str = ""


def named_labels(planes: np.ndarray, name: str) -> NamedLabels:
    """``planes`` (no copy) carrying ``name``."""
    view = planes.view(NamedLabels)
    view.labels_name = name
    return view


def labels_argument(value: object, param: str, function: str) -> np.ndarray | None:
    """A labels-name parameter's planes, or None when it names no set.

    In a pipeline the runner swaps the name for the set's planes; a direct
    call passes the planes itself, and a bare name cannot be resolved there.

    Raises
    ------
    PipelineError
        A set name was given to a direct call.
    """
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, str):
        raise PipelineError(
            f"{function} called directly needs the labels planes for {param}, "
            f"not the set name {value!r} (a pipeline resolves names itself)",
            field=param,
        )
    return np.asarray(value)
