"""URLs of the app, which OMERO.web mounts at ``/openhcs/``.

OMERO.web includes ``<app>.urls`` of each app in ``omero.web.apps`` under
``/<app label>/``, and this app's label is ``openhcs``.
"""

from __future__ import annotations

from django.urls import path

from omero_openhcs import relay_views, views

urlpatterns = [
    path("", views.index, name="omero_openhcs_index"),
    path("pipelines/", views.pipelines, name="omero_openhcs_pipelines"),
    path(
        "pipelines/<slug:name>/edit/",
        views.pipeline_edit,
        name="omero_openhcs_pipeline_edit",
    ),
    path(
        "pipelines/<slug:name>/delete/",
        views.pipeline_delete,
        name="omero_openhcs_pipeline_delete",
    ),
    path("execute/<int:plate_id>/", views.execute, name="omero_openhcs_execute"),
    path("open_with/", views.open_with, name="omero_openhcs_open_with"),
    path("plate/<int:plate_id>/panel/", views.plate_panel, name="omero_openhcs_panel"),
    path("results/<str:execution_id>/", views.results, name="omero_openhcs_results"),
    path(
        "results/<str:execution_id>/cancel/",
        views.cancel,
        name="omero_openhcs_cancel",
    ),
    path(
        "results/<str:execution_id>/state.json",
        relay_views.results_state,
        name="omero_openhcs_state",
    ),
    path(
        "results/<str:execution_id>/well/<str:well>/",
        relay_views.results_well,
        name="omero_openhcs_well",
    ),
    path("viewer.js", relay_views.viewer_module, name="omero_openhcs_viewer_js"),
    path("viewer.css", relay_views.viewer_css, name="omero_openhcs_viewer_css"),
]
