"""OMERO plates (the ``omero`` extra): ``open_plate("omero:<plate id>")``.

Metadata comes from two queries run in the user's joined session (see
:mod:`~openhcs_nb.plates._omero_meta`). Pixels come, per image, from the
fastest path that works, in the order of ``settings.pixel_paths``:
``original`` files in the ManagedRepository, the ``romio`` pixel buffer under
``<data dir>/Pixels``, or ``ice`` (RawPixelsStore). :meth:`OmeroPlate.pixel_path`
says which one an image uses and :attr:`OmeroPlate.planes_read` counts planes
per path.

Permissions before bytes: the only images a plate knows are those the user's
own query returned, so no file of an image the user may not read is ever
opened. A plate the user may not read raises :class:`NotAuthorizedError`
before anything is read.

Refs: ``omero:123``, or ``omero:123?acquisition=45`` to pick one run of a plate
with several PlateAcquisitions (the first one by id is the default).

Worker processes: pickling a plate sends a :class:`OmeroPlateHandle` (plate,
session key, settings, and the gateway factory the session was joined with:
None, omero-py's BlitzGateway, in production); the worker joins the same
session and runs the same query as the user, once per process
(:func:`reopen_omero_plate` is cached).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openhcs_nb.errors import PlateError, UnknownPlateError
from openhcs_nb.omero.errors import (
    SessionInvalidError,
    translate_errors,
)
from openhcs_nb.omero.gateway import GatewayFactory
from openhcs_nb.omero.session import OmeroSession, find_session_key, join_session
from openhcs_nb.omero.settings import OmeroSettings, omero_settings
from openhcs_nb.plates._omero_files import OriginalFiles
from openhcs_nb.plates._omero_meta import (
    OmeroImage,
    PlateMeta,
)
from openhcs_nb.plates._omero_pixels import (
    IceSource,
    PixelSource,
    RomioSource,
    romio_path,
)
from openhcs_nb.plates._omero_query import load_plate_meta
from openhcs_nb.plates._omero_store import shared_store
from openhcs_nb.plates.model import Plate, WellImages

_REF = re.compile(r"^omero:(\d+)(?:\?acquisition=(\d+))?$")


def parse_ref(ref: str) -> tuple[int, int | None]:
    """``"omero:123?acquisition=4"`` -> ``(123, 4)``.

    Raises
    ------
    UnknownPlateError
        Not an OMERO plate reference.
    """
    match = _REF.match(ref.strip())
    if not match:
        raise UnknownPlateError(
            f"{ref!r} is not an OMERO plate reference (expected 'omero:<plate id>' "
            "or 'omero:<plate id>?acquisition=<id>')"
        )
    acquisition = int(match.group(2)) if match.group(2) else None
    return int(match.group(1)), acquisition


@dataclass(frozen=True)
class OmeroPlateHandle:
    """What a worker process needs to reopen a plate as the same user."""

    ref: str
    key: str = field(repr=False)
    settings: OmeroSettings
    #: None (BlitzGateway) or a picklable, hashable factory (tests' double)
    factory: GatewayFactory | None = field(default=None, repr=False)


class OmeroPlate(Plate):
    """A plate in OMERO, read as one user through their joined session."""

    def __init__(
        self, ref: str, meta: PlateMeta, session: OmeroSession, *, owns_session: bool
    ) -> None:
        super().__init__(ref, meta.layout)
        self.meta = meta
        self.session = session
        self.settings = session.settings
        self._owns_session = owns_session
        managed = self.settings.managed_dir
        self._originals = OriginalFiles(managed, meta.files) if managed else None
        self._sources: dict[int, PixelSource] = {}
        self._why: dict[int, list[str]] = {}
        # The connection's one RawPixelsStore: its pixels id is session state.
        self._ice = shared_store(session.gateway)
        #: planes read so far, per path ("original", "romio", "ice")
        self.planes_read: dict[str, int] = {"original": 0, "romio": 0, "ice": 0}

    # -- identity -----------------------------------------------------------------

    @property
    def plate_id(self) -> int:
        """The OMERO Plate id."""
        return self.meta.plate_id

    def handle(self) -> OmeroPlateHandle:
        """The picklable description a worker reopens this plate from."""
        return OmeroPlateHandle(
            self.ref, self.session.key, self.settings, self.session.factory
        )

    def __reduce__(self) -> tuple[Any, tuple[OmeroPlateHandle]]:
        return reopen_omero_plate, (self.handle(),)

    def image(self, well: str, site: int) -> OmeroImage:
        """The OMERO image of one field.

        Raises
        ------
        UnknownWellError
            No such well on the plate.
        PlateError
            The well has no such field.
        """
        well = self.check_well(well)
        image = self.meta.images.get((well, site))
        if image is None:
            raise PlateError(
                f"OMERO plate {self.plate_id}, well {well}: no field {site} "
                f"(this plate has {self.layout.fields} fields)"
            )
        return image

    def well_id(self, well: str) -> int:
        """The OMERO Well id of ``well``."""
        return self.meta.well_ids[self.check_well(well)]

    # -- pixel paths ----------------------------------------------------------------

    def pixel_path(self, well: str, site: int) -> str:
        """``"original"``, ``"romio"`` or ``"ice"``: how this field is read.

        Raises
        ------
        PlateError
            No allowed path can read the image (the message says why per path).
        """
        return self._source(self.image(well, site)).path

    def why_not(self, well: str, site: int) -> list[str]:
        """Why faster paths were passed over for this field (empty if none were)."""
        image = self.image(well, site)
        self._source(image)
        return list(self._why.get(image.image_id, []))

    def _source(self, image: OmeroImage) -> PixelSource:
        found = self._sources.get(image.image_id)
        if found is not None:
            return found
        reasons: list[str] = []
        for path in self.settings.pixel_paths:
            source = self._try(path, image, reasons)
            if source is not None:
                self._sources[image.image_id] = source
                self._why[image.image_id] = reasons
                return source
        raise PlateError(
            f"OMERO plate {self.plate_id}, well {image.well} field {image.field} "
            f"(image {image.image_id}): no allowed pixel path can read it: "
            + "; ".join(reasons)
        )

    def _try(self, path: str, image: OmeroImage, reasons: list[str]) -> Any:
        settings = self.settings
        if path == "original":
            if self._originals is None:
                reasons.append("original: no managed_dir configured")
                return None
            source = self._originals.source(image)
            if source is None:
                reasons.append(f"original: {self._originals.why[image.image_id]}")
            return source
        if path == "romio":
            if settings.data_dir is None:
                reasons.append("romio: no data_dir configured")
                return None
            file = romio_path(settings.data_dir, image.pixels_id)
            if not RomioSource.usable(file, image):
                reasons.append(f"romio: no buffer of the right size at {file}")
                return None
            return RomioSource(file, image)
        return IceSource(image, self._ice, self._errors)

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return translate_errors(what, self.session.where)

    # -- reading ----------------------------------------------------------------------

    def read_image(
        self, well: str, site: int, channel: int, z: int = 0, t: int = 0
    ) -> np.ndarray:
        """One ``(y, x)`` plane by the image's pixel path.

        Raises
        ------
        UnknownWellError
            The well is not on the plate (or not visible to the user).
        PlateError
            An index is out of range, or no path can read the image.
        NotAuthorizedError, SessionInvalidError
            OMERO refused an Ice read.
        """
        image = self.image(well, site)
        for label, index, size in (
            ("channel", channel, image.size_c),
            ("z", z, image.size_z),
            ("t", t, image.size_t),
        ):
            if not 0 <= index < size:
                raise PlateError(
                    f"OMERO plate {self.plate_id}, well {image.well}: {label} index "
                    f"{index} is out of range (0..{size - 1})"
                )
        source = self._source(image)
        plane = source.plane(z, channel, t)
        self.planes_read[source.path] += 1
        return plane

    def read_well(self, well: str) -> WellImages:
        """Every field of ``well``, each read whole by its own path.

        Raises
        ------
        UnknownWellError, PlateError, NotAuthorizedError, SessionInvalidError
            As :meth:`read_image`.
        """
        well = self.check_well(well)
        lay = self.layout
        out = np.empty(
            (lay.fields, lay.t, len(lay.channels), lay.z, *lay.shape), dtype=self.dtype
        )
        for site in range(lay.fields):
            image = self.image(well, site)
            source = self._source(image)
            out[site] = source.field()
            self.planes_read[source.path] += lay.t * len(lay.channels) * lay.z
        return WellImages(well, out, lay.channels)

    def close(self) -> None:
        """Close open files and the Ice store; leave the session if we joined it."""
        if self._originals is not None:
            self._originals.close()
        self._ice.close()  # the next reader of the session sets it again
        if self._owns_session:
            self.session.close()


def open_omero_plate(
    ref: str,
    *,
    session: OmeroSession | None = None,
    config: Any = None,
    factory: GatewayFactory | None = None,
) -> OmeroPlate:
    """Open ``"omero:<plate id>"`` as the user of ``session``.

    Without a session, the key comes from :func:`find_session_key`
    (``OMERO_SESSION_KEY``), is joined through ``factory`` (default: omero-py's
    BlitzGateway) and the plate leaves that session when closed. With one, the
    session's own factory is used (and travels to workers).
    ``config`` is anything :func:`omero_settings` accepts (default: the
    session's settings, else the ``OMERO_*`` environment variables).

    Raises
    ------
    UnknownPlateError
        Bad reference, or no such plate.
    NotAuthorizedError
        The user may not read the plate; nothing was read from disk.
    SessionInvalidError
        No key, or an expired one.
    PlateError
        The plate cannot be mapped (images of different sizes, no images).
    """
    plate_id, acquisition = parse_ref(ref)
    canonical = f"omero:{plate_id}" + (
        f"?acquisition={acquisition}" if acquisition is not None else ""
    )
    owns = session is None
    if session is None:
        key = find_session_key()
        if not key:
            raise SessionInvalidError(
                f"opening {ref}: no OMERO session key (set OMERO_SESSION_KEY, or "
                "log in with openhcs_nb.omero.session.login)"
            )
        session = join_session(key, config=omero_settings(config), factory=factory)
    elif config is not None:
        session = dataclasses.replace(session, settings=omero_settings(config))
    try:
        meta = load_plate_meta(session, plate_id, acquisition)
    except BaseException:
        if owns:
            session.close()
        raise
    return OmeroPlate(canonical, meta, session, owns_session=owns)


@functools.lru_cache(maxsize=4)
def reopen_omero_plate(handle: OmeroPlateHandle) -> OmeroPlate:
    """Reopen a plate in a worker: join the same session, query as the user.

    Cached per process (a worker serves many wells of one plate), like
    :func:`openhcs_nb.execution.well.open_cached` is for other sources.

    Raises
    ------
    SessionInvalidError, NotAuthorizedError, UnknownPlateError, PlateError
        As :func:`open_omero_plate`.
    """
    plate_id, acquisition = parse_ref(handle.ref)
    session = join_session(handle.key, config=handle.settings, factory=handle.factory)
    try:
        meta = load_plate_meta(session, plate_id, acquisition)
    except BaseException:
        session.close()
        raise
    return OmeroPlate(handle.ref, meta, session, owns_session=True)


__all__ = [
    "OmeroPlate",
    "OmeroPlateHandle",
    "load_plate_meta",
    "open_omero_plate",
    "parse_ref",
    "reopen_omero_plate",
]
