"""The preset commands: list, get, save (validated, never run) and delete.

Each runs on the compile pool, like Submit. Saving loads the code with the
server's safe loader against its catalogue and its ``[trust]`` policy (what
Submit does before it compiles against a plate); finding the asking user's
OMERO groups asks OMERO through their joined session. Who asks is the
command's :class:`~openhcs_nb.server.peers.Peer` (a front end's is already the
OMERO user it acts for); the OMERO groups come from the session, never from
the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openhcs_nb.omero.errors import translate_errors
from openhcs_nb.omero.gateway import ALL_GROUPS, parameters
from openhcs_nb.protocol import (
    DeletePreset,
    GetPreset,
    ListPresets,
    PresetDeleted,
    PresetInfo,
    PresetReply,
    PresetsReply,
    SavePreset,
)
from openhcs_nb.results.store import pipeline_hash
from openhcs_nb.server.frontends import omero_owner
from openhcs_nb.server.peers import Peer
from openhcs_nb.server.presets import Preset, PresetStore, Viewer

if TYPE_CHECKING:
    from openhcs_nb.omero.session import OmeroSession
    from openhcs_nb.server.handlers import Handlers

Out = tuple[Any, list[Any]]
PresetCommand = ListPresets | GetPreset | SavePreset | DeletePreset

#: The groups of the session's user, with their permissions (``details``).
GROUPS_QUERY = "select g from ExperimenterGroup g where g.id in (:ids)"


class PresetHandlers:
    """Answers preset commands from the job store's ``presets`` table."""

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers
        self.store = PresetStore(handlers.store)

    def answer(self, msg: PresetCommand, peer: Peer) -> Out:
        """The reply to one preset command (on the compile pool).

        Raises
        ------
        UnknownPresetError, PresetExistsError, NotAuthorizedError
            The preset is not visible, exists already, or may not be changed.
        PipelineCodeError, PipelineError, UntrustedCodeError
            The code of a SavePreset was refused by the safe loader (or
            declares own functions the ``[trust]`` policy refuses this user).
        SessionInvalidError
            The peer's OMERO session ended.
        """
        viewer = self.viewer(peer)
        match msg:
            case ListPresets():
                presets = [self._info(p, viewer) for p in self.store.visible(viewer)]
                self.h.audit.record(peer, "list_presets", "ok")
                return PresetsReply(rid=msg.rid, presets=presets), []
            case GetPreset():
                preset = self.store.find(msg.name, viewer)
                self.h.audit.record(peer, "get_preset", "ok", detail=_detail(preset))
                return PresetReply(rid=msg.rid, preset=self._info(preset, viewer)), []
            case SavePreset():
                # as Submit loads (own functions: the [trust] policy); runs nothing
                groups = [viewer.group_name] if viewer.group_name else []
                self.h.trust.load(msg.code, self.h.catalogue, peer.user, groups)
                preset = self.store.save(
                    viewer, msg.name, msg.code, msg.description, replace=msg.replace
                )
                self.h.audit.record(
                    peer,
                    "save_preset",
                    "ok",
                    pipeline_hash=pipeline_hash(msg.code),
                    detail=_detail(preset),
                )
                return PresetReply(rid=msg.rid, preset=self._info(preset, viewer)), []
            case DeletePreset():
                preset = self.store.delete(viewer, msg.name)
                self.h.audit.record(peer, "delete_preset", "ok", detail=_detail(preset))
                return PresetDeleted(rid=msg.rid, name=preset.name), []

    def viewer(self, peer: Peer) -> Viewer:
        """Who ``peer`` is for presets: its names, and its session's groups.

        Raises
        ------
        SessionInvalidError, OmeroUnavailableError
            The joined session ended, or OMERO cannot be reached.
        """
        names = {peer.user}
        owner = peer.user
        if peer.omero_user is not None:
            owner = omero_owner(peer.omero_user)
            names.add(owner)
        if peer.omero_key is None or self.h.omero is None:
            return Viewer(owner, frozenset(names))
        session = self.h.omero.pool.join(peer.omero_key)
        group_id, group_name, readable, writable = session_groups(session)
        return Viewer(
            owner,
            frozenset(names),
            group_id,
            group_name,
            frozenset(readable),
            frozenset(writable),
        )

    @staticmethod
    def _info(preset: Preset, viewer: Viewer) -> PresetInfo:
        return PresetInfo(
            name=preset.name,
            code=preset.code,
            description=preset.description,
            owner=preset.owner,
            group=preset.group_name,
            group_id=preset.group_id,
            created_at=preset.created_at,
            updated_at=preset.updated_at,
            editable=viewer.may_edit(preset),
        )


def session_groups(
    session: OmeroSession,
) -> tuple[int, str, set[int], set[int]]:
    """``(current group id, its name, readable groups, read-write groups)``.

    Asked of OMERO as the session's user: the event context names the groups
    they are a member of, and each group's permissions say whether members
    read (``rwr---`` and up) or change (``rwrw--``) each other's data. A
    private group (``rw----``) is neither: its members see only their own.

    Raises
    ------
    SessionInvalidError, OmeroUnavailableError
        The session ended, or OMERO cannot be reached.
    """
    from omero.rtypes import unwrap

    gateway = session.gateway
    with translate_errors("reading the session's groups", session.where):
        context = gateway.getEventContext()
        member = [int(g) for g in context.memberOfGroups]
        groups = gateway.getQueryService().findAllByQuery(
            GROUPS_QUERY, parameters(ids=member), ALL_GROUPS
        )
    readable, writable = set(), set()
    for group in groups:
        permissions = group.details.permissions
        if permissions.isGroupRead():
            readable.add(int(unwrap(group.id)))
        if permissions.isGroupWrite():
            writable.add(int(unwrap(group.id)))
    return int(context.groupId), str(context.groupName), readable, writable


def _detail(preset: Preset) -> dict[str, Any]:
    return {"name": preset.name, "group": preset.group_id, "owner": preset.owner}
