"""The function catalogue, re-exported from :mod:`openhcs_nb.spec`.

The spec lives in a leaf module so that ``functions/`` and ``pipeline/`` can
both use it without importing each other; this name stays for the code that
imported it from here. There is no global registry:
``openhcs_nb.functions.builtin_catalogue()`` builds the default one explicitly.
"""

from __future__ import annotations

from openhcs_nb.spec import (
    Catalogue,
    Function,
    Kind,
    LabelsName,
    LabelsRef,
    MemoryType,
    Param,
    ParamType,
    Value,
)

__all__ = [
    "Catalogue",
    "Function",
    "Kind",
    "LabelsName",
    "LabelsRef",
    "MemoryType",
    "Param",
    "ParamType",
    "Value",
]
