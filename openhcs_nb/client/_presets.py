"""Presets from the client: pipelines saved on the server by name.

Bound as methods of :class:`~openhcs_nb.client.connection.Connection`
(``presets``, ``preset``, ``save_preset``, ``delete_preset``). The server
validates code with its safe loader when it is saved and decides who sees and
changes what (the owner, and members of the preset's OMERO group), so these
are thin: one command each, and a refusal raises its typed error.

``submit("preset:NAME", ...)`` resolves the preset here, just before the
submit, and sends its exact code: the execution's provenance holds the code
that ran, even if the preset changes later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openhcs_nb.protocol import (
    DeletePreset,
    GetPreset,
    ListPresets,
    PresetInfo,
    SavePreset,
)

if TYPE_CHECKING:
    from openhcs_nb.client.connection import Connection

#: ``pipeline`` arguments that start with this name a preset.
PRESET_PREFIX = "preset:"


def preset_name(pipeline: Any) -> str | None:
    """The preset a ``pipeline`` argument names (``"preset:NAME"``), or None."""
    if isinstance(pipeline, str) and pipeline.startswith(PRESET_PREFIX):
        return pipeline[len(PRESET_PREFIX) :].strip()
    return None


def presets(self: Connection, *, timeout: float | None = None) -> list[PresetInfo]:
    """Every preset this user may see (their own and their OMERO groups'), by name.

    Raises
    ------
    RemoteError
        The server refused (e.g. the OMERO session ended) or did not answer.
    """
    return list(self._call(ListPresets(rid=0), timeout=timeout).presets)


def preset(self: Connection, name: str, *, timeout: float | None = None) -> PresetInfo:
    """One preset by name, with its code.

    Raises
    ------
    RemoteUnknownPreset
        No preset of that name is visible to this user.
    """
    return self._call(GetPreset(rid=0, name=name), timeout=timeout).preset


def save_preset(
    self: Connection,
    name: str,
    code: Any,
    *,
    description: str = "",
    replace: bool = False,
    timeout: float | None = None,
) -> PresetInfo:
    """Save pipeline ``code`` (or a Pipeline) as preset ``name``; nothing runs.

    It goes into the OMERO group of this connection's session (or is this
    user's own without OMERO).

    Raises
    ------
    RemotePipelineCodeError, RemotePipelineError
        The server's safe loader refused the code (the message says where).
    RemotePresetExists
        A preset of that name exists there and ``replace`` is False.
    RemoteNotAuthorized
        It exists and this user may not change it.
    """
    text = code if isinstance(code, str) else code.to_code()
    message = SavePreset(
        rid=0, name=name, code=text, description=description, replace=replace
    )
    return self._call(message, timeout=timeout).preset


def delete_preset(self: Connection, name: str, *, timeout: float | None = None) -> None:
    """Delete a preset.

    Raises
    ------
    RemoteUnknownPreset
        No preset of that name is visible to this user.
    RemoteNotAuthorized
        This user may see it but not delete it (someone else's, in a group
        that is not read-write).
    """
    self._call(DeletePreset(rid=0, name=name), timeout=timeout)
