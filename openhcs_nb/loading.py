"""Loading pipeline code against the built-in catalogue by default.

:mod:`openhcs_nb.pipeline` may not import :mod:`openhcs_nb.functions` (the two
share :mod:`openhcs_nb.spec` instead), so its loader takes the catalogue as a
required argument. This module sits above both packages and supplies the
default, for the public :func:`openhcs_nb.load_pipeline`, the CLI and the
magics. The server passes its own catalogue to the pipeline loader directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openhcs_nb.pipeline import loader

if TYPE_CHECKING:
    from openhcs_nb.pipeline.model import Pipeline
    from openhcs_nb.spec import Catalogue


def load_pipeline(code: str, catalogue: Catalogue | None = None) -> Pipeline:
    """Read pipeline code (or an OpenHCS script) into a Pipeline.

    ``catalogue`` lists the functions the code may import; ``None`` means
    :func:`openhcs_nb.functions.builtin_catalogue`.

    Raises
    ------
    PipelineCodeError
        As :func:`openhcs_nb.pipeline.loader.load_pipeline`.
    """
    return loader.load_pipeline(code, _or_builtin(catalogue))


def load_openhcs_script(
    code: str, catalogue: Catalogue | None = None, *, name: str = "openhcs"
) -> Pipeline:
    """Read an OpenHCS ``FunctionStep`` script into a Pipeline called ``name``.

    Raises
    ------
    PipelineCodeError
        As :func:`openhcs_nb.pipeline.loader.load_openhcs_script`.
    """
    return loader.load_openhcs_script(code, _or_builtin(catalogue), name=name)


def _or_builtin(catalogue: Catalogue | None) -> Catalogue:
    """``catalogue``, or a fresh built-in one (imported only when needed)."""
    if catalogue is not None:
        return catalogue
    from openhcs_nb.functions import builtin_catalogue

    return builtin_catalogue()
