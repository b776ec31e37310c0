"""Pipelines as values: the catalogue, Step and Pipeline, code generation, loading.

Nothing here runs a processing function; execution lives elsewhere.
"""

from openhcs_nb.pipeline._html import catalogue_html
from openhcs_nb.pipeline.catalogue import Catalogue, Function, Param
from openhcs_nb.pipeline.codegen import pipeline_to_code
from openhcs_nb.pipeline.loader import load_openhcs_script, load_pipeline
from openhcs_nb.pipeline.model import Pipeline, Step

__all__ = [
    "Catalogue",
    "Function",
    "Param",
    "Pipeline",
    "Step",
    "catalogue_html",
    "load_openhcs_script",
    "load_pipeline",
    "pipeline_to_code",
]
