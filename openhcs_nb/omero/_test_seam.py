"""TEST SEAM: make ``join_session`` use the OMERO test double instead of Ice.

This exists so that the real server process can be tested end to end without
an OMERO server. It is used only when BOTH hold:

1. the settings name a file: ``[omero] test_double = "/path/double.json"``
   (or ``OPENHCS_NB_OMERO_TEST_DOUBLE``); it is None by default, and
2. that file is a JSON object whose ``kind`` is exactly :data:`DOUBLE_KIND` and
   whose ``double`` names the Python file implementing the double (the one in
   ``tests/omero/omero_double.py``, which is not part of the installed package).

Every use logs a WARNING, so a server running against the double says so in
its log. Production installations never set ``test_double``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Any

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.omero.gateway import GatewayFactory

log = logging.getLogger(__name__)

DOUBLE_KIND = "openhcs-nb-omero-test-double"


def double_factory(description: Path) -> GatewayFactory:
    """The gateway factory of the test double described by ``description``.

    Raises
    ------
    OpenHCSError
        The file is not a test-double description, or its module is missing.
    """
    path = Path(description)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OpenHCSError(f"omero test_double {path}: cannot read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != DOUBLE_KIND:
        raise OpenHCSError(
            f"omero test_double {path}: not a test-double description "
            f"(its 'kind' must be {DOUBLE_KIND!r})"
        )
    module_path = (path.parent / str(doc.get("double", ""))).resolve()
    module = _load_module(module_path)
    log.warning(
        "OMERO TEST DOUBLE IN USE (omero.test_double=%s): no real OMERO server", path
    )
    factory: Any = module.gateway_factory(path)
    return factory


def _load_module(path: Path) -> Any:
    name = f"_openhcs_omero_double_{abs(hash(str(path)))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise OpenHCSError(f"omero test_double: no double module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
