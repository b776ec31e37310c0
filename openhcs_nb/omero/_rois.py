"""Label images as OMERO mask ROIs: one ``RoiI`` with one ``MaskI`` per object.

The conversion follows ``omero-rois``' ``mask_from_binary_image``: the mask is
cropped to the object's bounding box, its pixels packed eight to a byte
(``numpy.packbits``, row-major, most significant bit first) and placed at the
box's ``x``/``y`` with the box's ``width``/``height``, on the plane ``theZ``,
``theT``. ROIs sit on the field's own image, so OMERO.web and iviewer overlay
them on the pixels they were computed from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

#: RGBA fill colours cycled over the labels sets (semi-transparent).
_COLOURS = ((255, 255, 0, 96), (0, 255, 255, 96), (255, 0, 255, 96), (0, 255, 0, 96))


def rgba_int(r: int, g: int, b: int, a: int) -> int:
    """OMERO's colour: RGBA packed into one signed 32-bit integer."""
    value = (r << 24) | (g << 16) | (b << 8) | a
    return value - (1 << 32) if value >= (1 << 31) else value


def mask_rois(
    labels: np.ndarray,
    image_id: int,
    name: str,
    description: str,
    colour_index: int = 0,
) -> tuple[list[Any], list[tuple[int, int, int]]]:
    """One ROI per object of a ``(t, z, y, x)`` label array, with ``(t, z, label)``.

    Pipelines segment plane by plane, so label 5 on z=0 and label 5 on z=1 are
    different objects: each ``(t, z, label)`` gets its own ROI.
    """
    from omero.rtypes import rdouble, rint, rstring

    from openhcs_nb.omero.gateway import load_omero

    model = load_omero().model
    colour = rgba_int(*_COLOURS[colour_index % len(_COLOURS)])
    rois: list[Any] = []
    keys: list[tuple[int, int, int]] = []
    for t in range(labels.shape[0]):
        for z in range(labels.shape[1]):
            plane = labels[t, z]
            for index, box in enumerate(ndimage.find_objects(plane)):
                if box is None:
                    continue
                label = index + 1
                crop = plane[box] == label
                mask = model.MaskI()
                mask.x, mask.y = rdouble(box[1].start), rdouble(box[0].start)
                mask.width, mask.height = rdouble(crop.shape[1]), rdouble(crop.shape[0])
                mask.theZ, mask.theT = rint(z), rint(t)
                mask.bytes = np.packbits(crop.astype(np.uint8).ravel()).tobytes()
                mask.fillColor = rint(colour)
                mask.textValue = rstring(f"{name} {label}")
                roi = model.RoiI()
                roi.image = model.ImageI(image_id, False)
                roi.name = rstring(f"{name} {label} (t={t}, z={z})")
                roi.description = rstring(description)
                roi.addShape(mask)
                rois.append(roi)
                keys.append((t, z, label))
    return rois, keys
