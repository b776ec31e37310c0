"""The results page's data: viewer state (polled), one well's images, the viewer.

``state.json`` answers the plate viewer's keys for one execution of this
user, relayed from the execution server through the user's cached
connection; ``well/<well>/`` answers that well's preview planes as one
binary body with their description in the ``X-OpenHCS-Meta`` header. The
viewer's ES module is the notebook's own rendering core, joined by
``openhcs_nb.jupyter._viewer_esm.build_esm``, so both show the same thing.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from omeroweb.decorators import login_required

from omero_openhcs import relay
from omero_openhcs.refusals import pool, refusal_json, session_key
from openhcs_nb.client.errors import RemoteError

META_HEADER = "X-OpenHCS-Meta"


@cache
def _viewer_module() -> str:
    from openhcs_nb.jupyter._viewer_esm import build_esm

    return build_esm()


@cache
def _viewer_css() -> str:
    from openhcs_nb.jupyter._viewer_esm import STATIC

    return (STATIC / "plate_viewer.css").read_text(encoding="utf-8")


@require_GET
def viewer_module(_request: HttpRequest) -> HttpResponse:
    """The notebook viewer's rendering core as one ES module (no user data)."""
    return HttpResponse(_viewer_module(), content_type="text/javascript")


@require_GET
def viewer_css(_request: HttpRequest) -> HttpResponse:
    """The notebook viewer's stylesheet."""
    return HttpResponse(_viewer_css(), content_type="text/css")


def _layout(connection: Any, run: Any) -> dict[str, Any]:
    try:
        info = connection.plate_info(run.plate)
    except RemoteError:
        info = None  # the plate is gone: lay out the wells the run names
    return relay.layout_state(info, run)


@require_GET
@login_required()
def results_state(
    request: HttpRequest, execution_id: str, conn: Any = None, **_kw: Any
) -> JsonResponse:
    """Viewer state of one execution; ``?version=`` the page has, to skip repeats."""
    key = session_key(conn)
    try:
        run = pool().execution(key, execution_id)
        version = relay.version_of(run)
        if request.GET.get("version") == version:
            return JsonResponse({"changed": False, "version": version})
        body = {"changed": True, "version": version, **relay.run_state(run)}
        if request.GET.get("layout") == "1":
            body.update(_layout(pool().get(key), run))
    except RemoteError as exc:
        return refusal_json(conn, exc)
    return JsonResponse(body)


@require_GET
@login_required()
def results_well(
    request: HttpRequest, execution_id: str, well: str, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """The preview planes of ``well``: binary body, description in a header."""
    try:
        run = pool().execution(session_key(conn), execution_id)
        data, meta = relay.well_images(run, well)
    except RemoteError as exc:
        return refusal_json(conn, exc)
    except KeyError:
        body = {"error": f"no result for well {well} yet", "code": "not_yet"}
        return JsonResponse(body, status=404)
    response = HttpResponse(data, content_type="application/octet-stream")
    response[META_HEADER] = json.dumps(meta, separators=(",", ":"))
    return response
