"""The pages: status, presets, launch on a plate, results, the plate panel.

Every view is wrapped in OMERO.web's ``login_required`` and so receives the
user's ``conn``; it asks the execution server, acting through that user's
OMERO session, and shows a refusal as one line. State changes are POSTs,
which Django's CSRF middleware guards (OMERO.web enables it).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from omeroweb.decorators import login_required

from omero_openhcs.forms import ExecuteForm, PresetForm
from omero_openhcs.refusals import (
    connection_for,
    message_of,
    refusal_page,
    status_of,
)
from openhcs_nb.client.errors import RemoteError

#: Recent executions shown on the status page and in the plate panel.
RECENT = 20
PANEL_RECENT = 5


def plate_ref(plate_id: int) -> str:
    """The execution server's name of OMERO plate ``plate_id``."""
    return f"omero:{plate_id}"


def plate_id_of(plate: str) -> int | None:
    """The OMERO id in ``omero:<id>`` (None for other plates)."""
    head, _, tail = plate.partition(":")
    return int(tail) if head == "omero" and tail.isdigit() else None


def _executions(connection: Any, plate: str | None, limit: int) -> list[Any]:
    runs = connection.executions()
    if plate is not None:
        runs = [r for r in runs if r.plate == plate]
    return runs[:limit]


@require_GET
@login_required()
def index(request: HttpRequest, conn: Any = None, **_kw: Any) -> HttpResponse:
    """The execution server as this user sees it, and their recent executions."""
    try:
        connection = connection_for(conn)
        runs = _executions(connection, None, RECENT)
    except RemoteError as exc:
        return refusal_page(request, conn, exc, "openhcs-nb")
    info = connection.server_info
    context = {"server": info, "runs": runs, "address": connection.address}
    return render(request, "omero_openhcs/index.html", context)


@require_http_methods(["GET", "POST"])
@login_required()
def pipelines(request: HttpRequest, conn: Any = None, **_kw: Any) -> HttpResponse:
    """List this user's presets (their own and their groups'); POST saves one."""
    form = PresetForm(request.POST or None, request.FILES or None)
    message, status = "", 400 if request.method == "POST" else 200
    try:
        connection = connection_for(conn)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            connection.save_preset(
                data["name"], data["code"], description=data["description"]
            )
            return HttpResponseRedirect(reverse("omero_openhcs_pipelines"))
        presets = connection.presets()
    except RemoteError as exc:
        if request.method != "POST":
            return refusal_page(request, conn, exc, "Pipelines")
        message, status = message_of(exc), status_of(exc)
        presets = _presets_or_empty(conn)
    context = {"presets": presets, "form": form, "message": message}
    return render(request, "omero_openhcs/pipelines.html", context, status=status)


def _presets_or_empty(conn: Any) -> list[Any]:
    try:
        return connection_for(conn).presets()
    except RemoteError:
        return []


@require_http_methods(["GET", "POST"])
@login_required()
def pipeline_edit(
    request: HttpRequest, name: str, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """Edit one preset; the server checks the user may change it."""
    try:
        connection = connection_for(conn)
        preset = connection.preset(name)
    except RemoteError as exc:
        return refusal_page(request, conn, exc, "Pipeline")
    initial = {"name": preset.name, "description": preset.description}
    initial["code"] = preset.code
    form = PresetForm(request.POST or None, request.FILES or None, initial=initial)
    message, status = "", 400 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            connection.save_preset(
                name, data["code"], description=data["description"], replace=True
            )
        except RemoteError as exc:
            message, status = message_of(exc), status_of(exc)
        else:
            return HttpResponseRedirect(reverse("omero_openhcs_pipelines"))
    context = {"preset": preset, "form": form, "message": message}
    return render(request, "omero_openhcs/preset_edit.html", context, status=status)


@require_POST
@login_required()
def pipeline_delete(
    request: HttpRequest, name: str, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """Delete one preset (owner, or a read-write group's member)."""
    try:
        connection_for(conn).delete_preset(name)
    except RemoteError as exc:
        return refusal_page(request, conn, exc, "Pipelines")
    return HttpResponseRedirect(reverse("omero_openhcs_pipelines"))


@require_http_methods(["GET", "POST"])
@login_required()
def execute(
    request: HttpRequest, plate_id: int, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """Choose a preset (and wells) and launch it on the plate, as this user."""
    plate = plate_ref(plate_id)
    form = ExecuteForm(request.POST or None)
    message, status = "", 200
    try:
        connection = connection_for(conn)
        info = connection.plate_info(plate)
        presets = connection.presets()
    except RemoteError as exc:
        return refusal_page(request, conn, exc, f"Plate {plate_id}")
    if request.method == "POST" and form.is_valid():
        try:
            run = connection.submit(
                f"preset:{form.cleaned_data['preset']}",
                plate,
                form.cleaned_data["wells"],
                label=form.cleaned_data["preset"],
            )
        except RemoteError as exc:
            message, status = message_of(exc), status_of(exc)
        else:
            target = reverse("omero_openhcs_results", args=[run.id])
            return HttpResponseRedirect(target)
    elif request.method == "POST":
        message = "; ".join(e for errs in form.errors.values() for e in errs)
        status = 400
    context = {
        "plate_id": plate_id,
        "info": info,
        "presets": presets,
        "form": form,
        "message": message,
    }
    return render(request, "omero_openhcs/execute.html", context, status=status)


@require_GET
@login_required()
def results(
    request: HttpRequest, execution_id: str, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """The live results page; the page polls ``results_state`` from here on."""
    try:
        info = connection_for(conn).status(execution_id)
    except RemoteError as exc:
        return refusal_page(request, conn, exc, "Execution")
    plate_id = plate_id_of(info.plate)
    context = {"run": info, "plate_id": plate_id}
    return render(request, "omero_openhcs/results.html", context)


@require_POST
@login_required()
def cancel(
    request: HttpRequest, execution_id: str, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """Cancel one of this user's executions, then show its results page."""
    try:
        connection_for(conn).cancel(execution_id)
    except RemoteError as exc:
        return refusal_page(request, conn, exc, "Execution")
    return HttpResponseRedirect(reverse("omero_openhcs_results", args=[execution_id]))


@require_GET
@login_required()
def plate_panel(
    request: HttpRequest, plate_id: int, conn: Any = None, **_kw: Any
) -> HttpResponse:
    """The webclient's right-hand panel for a plate: presets, run, recent runs."""
    plate = plate_ref(plate_id)
    context: dict[str, Any] = {"plate_id": plate_id, "message": ""}
    try:
        connection = connection_for(conn)
        context["presets"] = connection.presets()
        context["runs"] = _executions(connection, plate, PANEL_RECENT)
    except RemoteError as exc:
        context["message"] = message_of(exc)
    return render(request, "omero_openhcs/plate_panel.html", context)


@require_GET
@login_required()
def open_with(request: HttpRequest, conn: Any = None, **_kw: Any) -> HttpResponse:
    """The ``open_with`` target: ``?plate=<id>`` goes to that plate's launch page."""
    plate = request.GET.get("plate", "").split(",")[0].strip()
    if not plate.isdigit():
        context = {"title": "openhcs-nb", "message": "select one plate to open"}
        return render(request, "omero_openhcs/refused.html", context, status=400)
    return HttpResponseRedirect(reverse("omero_openhcs_execute", args=[int(plate)]))
