"""Real ``omero.model`` graphs built from the fixture description: what the
double's query service returns, shaped like a server's ``join fetch`` results
(loaded where our queries fetch, unloaded references with ids elsewhere)."""

from __future__ import annotations

from typing import Any

import omero
import omero.clients
from omero.rtypes import rint, rstring


class ModelRows:
    """Mixin of :class:`omero_double.DoubleServer`: rows -> model objects."""

    doc: dict[str, Any]
    images: dict[int, dict[str, Any]]
    plates: dict[int, dict[str, Any]]
    filesets: dict[int, dict[str, Any]]
    image_owner: dict[int, int]

    def permissions(self, group: int) -> Any:
        """The group's permissions as OMERO's own ``PermissionsI`` reads them.

        The string is ``rw`` (owner) + group pair + world pair: ``rw----``
        private, ``rwr---`` read-only, ``rwra--`` read-annotate, ``rwrw--``
        read-write. Letting omero-py parse it keeps the double's ACL from
        misreading which characters are the group's.
        """
        return omero.model.PermissionsI(self.doc["groups"][str(group)]["perms"])

    def group_graph(self, group: int) -> Any:
        """An ``ExperimenterGroupI`` as a query returns it: name and permissions."""
        rec = self.doc["groups"][str(group)]
        obj = omero.model.ExperimenterGroupI(group, True)
        obj.name = rstring(rec["name"])
        obj.details.permissions = self.permissions(group)
        return obj

    def can_read(
        self, user: dict[str, Any], group: int, owner: int | None = None
    ) -> bool:
        """Members read their group's data; in a private group only their own."""
        if group not in user["groups"]:
            return False
        if owner is None or owner == user["id"]:
            return True
        return bool(self.permissions(group).isGroupRead())

    def can_annotate(self, user: dict[str, Any], plate: dict[str, Any]) -> bool:
        """Owners annotate their data; other members only where the group allows."""
        if plate["group"] not in user["groups"]:
            return False
        if plate["owner"] == user["id"]:
            return True
        return bool(self.permissions(plate["group"]).isGroupAnnotate())

    def details(self, obj: Any, group: int, owner: int, user: dict[str, Any]) -> None:
        perms = omero.model.PermissionsI(self.doc["groups"][str(group)]["perms"])
        plate_like = {"group": group, "owner": owner}
        # restrictions: link, edit, delete, annotate (True = not allowed)
        annotate = self.can_annotate(user, plate_like)
        perms._restrictions = [not annotate, owner != user["id"], True, not annotate]
        obj.details.permissions = perms
        obj.details.group = omero.model.ExperimenterGroupI(group, False)
        obj.details.owner = omero.model.ExperimenterI(owner, False)

    def image_graph(self, image_id: int, user: dict[str, Any]) -> Any:
        rec = self.images[image_id]
        image = omero.model.ImageI(rec["id"], True)
        image.name = rstring(rec["name"])
        image.series = rint(rec["series"])
        if rec["fileset"] is not None:
            image.fileset = omero.model.FilesetI(rec["fileset"], False)
        self.details(image, rec["group"], self.image_owner.get(image_id, 0), user)
        px = rec["pixels"]
        pixels = omero.model.PixelsI(px["id"], True)
        for axis in "xyzct":
            setattr(pixels, f"size{axis.upper()}", rint(px[axis]))
        ptype = omero.model.PixelsTypeI()
        ptype.value = rstring(px["type"])
        pixels.pixelsType = ptype
        order = omero.model.DimensionOrderI()
        order.value = rstring(px["order"])
        pixels.dimensionOrder = order
        for index, name in enumerate(rec["channels"]):
            channel = omero.model.ChannelI(px["id"] * 10 + index, True)
            logical = omero.model.LogicalChannelI(px["id"] * 10 + index, True)
            logical.name = rstring(name)
            channel.logicalChannel = logical
            pixels.addChannel(channel)
        image.addPixels(pixels)
        return image

    def plate_graph(self, plate_id: int, user: dict[str, Any]) -> Any:
        rec = self.plates[plate_id]
        plate = omero.model.PlateI(plate_id, True)
        plate.name = rstring(rec["name"])
        plate.rows, plate.columns = rint(rec["rows"]), rint(rec["columns"])
        self.details(plate, rec["group"], rec["owner"], user)
        acqs = {
            int(k): self._acquisition(int(k), v, plate_id)
            for k, v in rec["acquisitions"].items()
        }
        for wrec in rec["wells"]:
            well = omero.model.WellI(wrec["id"], True)
            well.row, well.column = rint(wrec["row"]), rint(wrec["column"])
            well.plate = omero.model.PlateI(plate_id, False)
            for srec in wrec["samples"]:
                image_rec = self.images[srec["image"]]
                owner = self.image_owner.get(srec["image"])
                if not self.can_read(user, image_rec["group"], owner):
                    continue  # OMERO's security filter drops unreadable rows
                sample = omero.model.WellSampleI(srec["id"], True)
                sample.image = self.image_graph(srec["image"], user)
                if srec["acquisition"] is not None:
                    sample.plateAcquisition = acqs[srec["acquisition"]]
                well.addWellSample(sample)
            plate.addWell(well)
        return plate

    @staticmethod
    def _acquisition(acq_id: int, name: str, plate_id: int) -> Any:
        acq = omero.model.PlateAcquisitionI(acq_id, True)
        acq.name = rstring(name)
        acq.plate = omero.model.PlateI(plate_id, False)
        return acq

    def file_entries(self, fileset_ids: list[int], user: dict[str, Any]) -> list[Any]:
        out = []
        for fid in fileset_ids:
            for frec in self.filesets.get(fid, {"files": []})["files"]:
                entry = omero.model.FilesetEntryI(frec["id"] + 1_000_000, True)
                entry.fileset = omero.model.FilesetI(fid, False)
                original = omero.model.OriginalFileI(frec["id"], True)
                original.path = rstring(frec["path"])
                original.name = rstring(frec["name"])
                entry.originalFile = original
                out.append(entry)
        return out
