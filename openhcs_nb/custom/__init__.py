"""Own functions: declared in a notebook, shipped as source, run sandboxed.

``@openhcs_nb.function`` (:func:`function`) turns a plain function on an
``(n, y, x)`` stack into a :class:`CustomFunction`, a catalogue entry that
carries its own source. ``pipeline.to_code()`` writes that source into the
pipeline's code; the server reads it back without running it
(:mod:`openhcs_nb.custom._read`) and runs it only for users its ``[trust]``
policy names, inside :mod:`openhcs_nb.execution.sandbox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openhcs_nb.custom._capture import ShippingError, function
from openhcs_nb.custom._model import CustomFunction, ShippedSource

if TYPE_CHECKING:
    from openhcs_nb.spec import Catalogue, Function

__all__ = [
    "CustomFunction",
    "ShippedSource",
    "ShippingError",
    "catalogue_with",
    "function",
]


def catalogue_with(*functions: Function, base: Catalogue | None = None) -> Catalogue:
    """``base`` (default: the built-ins) plus your own functions, e.g. for the builder.

    ``PipelineBuilder(cat, local=cat, ...)`` with ``cat = catalogue_with(fn)``
    offers ``fn`` with widgets made from its parameter spec.

    Raises
    ------
    ValueError
        A function's name is already in the catalogue.
    """
    from openhcs_nb.spec import Catalogue

    if base is None:
        from openhcs_nb.functions import builtin_catalogue

        base = builtin_catalogue()
    return Catalogue([*base.values(), *functions])
