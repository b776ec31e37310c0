"""Running the plate queries as the user, and telling refusals apart.

``IQuery.get`` is what distinguishes "no such plate" (``ValidationException``)
from "not yours" (``SecurityViolation``, e.g. "Cannot read
ome.model.screen.Plate:Id_123"); the join-fetch query returns nothing in both
cases, so ``get`` is called only after it came back empty.
"""

from __future__ import annotations

import dataclasses

from openhcs_nb.errors import UnknownPlateError
from openhcs_nb.omero.errors import NotAuthorizedError, translate_errors
from openhcs_nb.omero.gateway import ALL_GROUPS, load_omero, parameters
from openhcs_nb.omero.session import OmeroSession
from openhcs_nb.plates._omero_meta import (
    FILES_QUERY,
    PLATE_QUERY,
    PlateMeta,
    fileset_files,
    plate_meta,
)


def load_plate_meta(
    session: OmeroSession, plate_id: int, acquisition: int | None = None
) -> PlateMeta:
    """Run the plate and files queries as the session's user and map them.

    Raises
    ------
    UnknownPlateError
        No plate with that id exists.
    NotAuthorizedError
        The plate exists but the user may not read it.
    SessionInvalidError
        The session expired.
    PlateError
        The plate's images cannot be mapped onto a layout.
    """
    query = session.gateway.getQueryService()
    what = f"reading OMERO plate {plate_id} as {session.user_name}"
    with translate_errors(what, session.where):
        found = query.findAllByQuery(PLATE_QUERY, parameters(pid=plate_id), ALL_GROUPS)
        if not found:
            _explain_missing(session, plate_id)
        meta = plate_meta(found[0], acquisition, {})
        fileset_ids = sorted(
            {i.fileset_id for i in meta.images.values() if i.fileset_id is not None}
        )
        entries = (
            query.findAllByQuery(FILES_QUERY, parameters(ids=fileset_ids), ALL_GROUPS)
            if fileset_ids
            else []
        )
    return dataclasses.replace(meta, files=fileset_files(entries))


def _explain_missing(session: OmeroSession, plate_id: int) -> None:
    """Tell "does not exist" from "not yours": ``IQuery.get`` differs for them."""
    omero = load_omero()
    try:
        session.gateway.getQueryService().get("Plate", plate_id, ALL_GROUPS)
    except omero.SecurityViolation as exc:
        raise NotAuthorizedError(
            f"OMERO user {session.user_name!r} may not read plate {plate_id} on "
            f"{session.where} (it is in a group they cannot see); nothing was read"
        ) from exc
    except (omero.ValidationException, omero.ApiUsageException) as exc:
        raise UnknownPlateError(
            f"no OMERO plate with id {plate_id} on {session.where}"
        ) from exc
    raise UnknownPlateError(
        f"OMERO plate {plate_id} on {session.where} returned nothing to "
        f"{session.user_name!r}"
    )
