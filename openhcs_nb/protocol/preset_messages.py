"""Commands and replies about presets: pipelines saved on the server by name.

A preset is pipeline code the server's safe loader accepted when it was saved,
with a description, its owner and the OMERO group it is shared in. The web
front end and the notebook reach the same presets (``submit("preset:NAME")``).

The structs carry the same tag and version fields as every message of
:mod:`openhcs_nb.protocol.messages`, which adds them to its two unions; they
live here so that module stays one concept long. Each command has one success
reply, or an ``ErrorReply`` (``unknown_preset``, ``preset_exists``,
``not_authorized``, ``bad_pipeline_code``, ``invalid_pipeline``).
"""

from __future__ import annotations

import msgspec

from openhcs_nb.protocol.records import PROTOCOL_VERSION


class PresetInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One preset as the asking user sees it.

    ``owner`` is the effective user who saved it (``omero:<name>`` when saved
    through an OMERO session); ``group`` and ``group_id`` name the OMERO group
    it is shared in (None without OMERO). ``editable`` says whether the asking
    user may replace or delete it (its owner, or a member of a read-write
    group).
    """

    name: str
    code: str
    description: str = ""
    owner: str = ""
    group: str | None = None
    group_id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    editable: bool = False


class _PresetMessage(
    msgspec.Struct, frozen=True, tag=True, tag_field="type", kw_only=True
):
    """The fields of every message (as ``messages._Message``); tag = class name."""

    rid: int
    v: int = PROTOCOL_VERSION


# --- client -> server -------------------------------------------------------


class ListPresets(_PresetMessage, kw_only=True):
    """Presets this user may see, by name; reply: :class:`PresetsReply`."""


class GetPreset(_PresetMessage, kw_only=True):
    """One preset by name; reply: :class:`PresetReply`."""

    name: str


class SavePreset(_PresetMessage, kw_only=True):
    """Validate ``code`` with the safe loader and store it; reply: :class:`PresetReply`.

    An existing preset of the same name (in the same group, or of the same
    owner without OMERO) is overwritten only with ``replace``.
    """

    name: str
    code: str
    description: str = ""
    replace: bool = False


class DeletePreset(_PresetMessage, kw_only=True):
    """Delete one preset; reply: :class:`PresetDeleted`."""

    name: str


# --- server -> client -------------------------------------------------------


class PresetsReply(_PresetMessage, kw_only=True):
    """The presets the user may see, sorted by name then group."""

    presets: list[PresetInfo]


class PresetReply(_PresetMessage, kw_only=True):
    """The preset asked for, or as just saved."""

    preset: PresetInfo


class PresetDeleted(_PresetMessage, kw_only=True):
    """The preset ``name`` is gone."""

    name: str


PresetCommand = ListPresets | GetPreset | SavePreset | DeletePreset
PresetAnswer = PresetsReply | PresetReply | PresetDeleted
