"""Presets: pipeline code saved on the server by name, shared in OMERO groups.

A preset lives in the job store's file (table ``presets``, schema version 3)
and is one of two kinds, by its *scope*:

- saved through an OMERO session: it belongs to the session's current group
  (``group:<id>``), so names are unique per group;
- saved without OMERO: it belongs to its owner alone (``user:<name>``).

Who may do what is decided from a :class:`Viewer` (the asking user's names
and OMERO groups, read from their joined session), never from the request:

- see: the owner, and members of the preset's group;
- replace or delete: the owner, and members of the group when the group is
  read-write (``rwrw--``). In private, read-only and read-annotate groups
  other members may only read and run it.

The code of a preset is checked by the caller (the safe loader) before
:meth:`PresetStore.save`; this module only stores rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.omero.errors import NotAuthorizedError
from openhcs_nb.server.jobs import JobStore

#: Bounds on what a preset may hold (the code travels in every submit).
MAX_NAME = 120
MAX_CODE = 256 * 1024
MAX_DESCRIPTION = 4000

_COLUMNS = (
    "scope, name, code, description, owner, group_id, group_name, created_at, "
    "updated_at"
)


class UnknownPresetError(OpenHCSError, LookupError):
    """No preset of that name is visible to the asking user."""

    code = "unknown_preset"


class PresetExistsError(OpenHCSError, ValueError):
    """A preset of that name exists in the same scope and ``replace`` was False."""

    code = "preset_exists"


class PresetValueError(OpenHCSError, ValueError):
    """A preset's name, code or description breaks a bound."""

    code = "invalid_pipeline"


@dataclass(frozen=True)
class Preset:
    """One stored preset row."""

    scope: str
    name: str
    code: str
    description: str
    owner: str
    group_id: int | None
    group_name: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Viewer:
    """Who asks: the names that are theirs, and their OMERO groups.

    ``owner`` is the name a save is stored under; ``names`` every owner name
    that counts as theirs. ``group_id``/``group_name`` are the session's
    current group (saves go there), ``groups`` every group they are a member
    of, ``read_write`` those of their groups whose members may change each
    other's data.
    """

    owner: str
    names: frozenset[str]
    group_id: int | None = None
    group_name: str | None = None
    groups: frozenset[int] = field(default_factory=frozenset)
    read_write: frozenset[int] = field(default_factory=frozenset)

    @property
    def scope(self) -> str:
        """Where this viewer's saves go: their current group, else themselves."""
        if self.group_id is not None:
            return f"group:{self.group_id}"
        return f"user:{self.owner}"

    def sees(self, preset: Preset) -> bool:
        """Owners see their presets; members see their groups' presets."""
        return preset.owner in self.names or (
            preset.group_id is not None and preset.group_id in self.groups
        )

    def may_edit(self, preset: Preset) -> bool:
        """Owners change theirs; members only in a read-write group."""
        return preset.owner in self.names or (
            preset.group_id is not None and preset.group_id in self.read_write
        )


class PresetStore:
    """The ``presets`` table of a :class:`~openhcs_nb.server.jobs.JobStore` file."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def visible(self, viewer: Viewer) -> list[Preset]:
        """Every preset ``viewer`` may see, by name then group."""
        with self.jobs.reading() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM presets ORDER BY name, scope"
            ).fetchall()
        return [p for p in (Preset(*row) for row in rows) if viewer.sees(p)]

    def find(self, name: str, viewer: Viewer) -> Preset:
        """The preset ``name`` as ``viewer`` means it.

        Several visible presets may share a name (one per group); the one in
        the viewer's current scope wins, then their own, then the lowest
        group id.

        Raises
        ------
        UnknownPresetError
            None of that name is visible to ``viewer`` (another group's
            presets are answered alike).
        """
        with self.jobs.reading() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM presets WHERE name = ?", (name,)
            ).fetchall()
        seen = [p for p in (Preset(*row) for row in rows) if viewer.sees(p)]
        if not seen:
            raise UnknownPresetError(f"no preset {name[:MAX_NAME]!r} for this user")
        return min(
            seen,
            key=lambda p: (
                p.scope != viewer.scope,
                p.owner not in viewer.names,
                p.group_id if p.group_id is not None else -1,
            ),
        )

    def save(
        self,
        viewer: Viewer,
        name: str,
        code: str,
        description: str = "",
        *,
        replace: bool = False,
    ) -> Preset:
        """Store (or, with ``replace``, overwrite) a preset in the viewer's scope.

        An overwrite keeps the preset's owner and creation time.

        Raises
        ------
        PresetValueError
            The name, code or description breaks a bound.
        PresetExistsError
            One of that name exists there and ``replace`` is False.
        NotAuthorizedError
            It exists and ``viewer`` may not change it.
        """
        check_preset(name, code, description)
        now = time.time()
        scope = viewer.scope
        with self.jobs.writing() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM presets WHERE scope = ? AND name = ?",
                (scope, name),
            ).fetchone()
            if row is None:
                preset = Preset(
                    scope,
                    name,
                    code,
                    description,
                    viewer.owner,
                    viewer.group_id,
                    viewer.group_name,
                    now,
                    now,
                )
                marks = ", ".join("?" * 9)
                db.execute(
                    f"INSERT INTO presets ({_COLUMNS}) VALUES ({marks})",
                    (
                        preset.scope,
                        preset.name,
                        preset.code,
                        preset.description,
                        preset.owner,
                        preset.group_id,
                        preset.group_name,
                        preset.created_at,
                        preset.updated_at,
                    ),
                )
                return preset
            old = Preset(*row)
            if not replace:
                raise PresetExistsError(
                    f"a preset {name!r} exists{_where(old)}; save with "
                    "replace=True to overwrite it"
                )
            _require_edit(viewer, old, "replace")
            db.execute(
                "UPDATE presets SET code = ?, description = ?, updated_at = ?, "
                "group_name = ? WHERE scope = ? AND name = ?",
                (code, description, now, viewer.group_name, scope, name),
            )
            return Preset(
                scope,
                name,
                code,
                description,
                old.owner,
                old.group_id,
                viewer.group_name if old.group_id is not None else None,
                old.created_at,
                now,
            )

    def delete(self, viewer: Viewer, name: str) -> Preset:
        """Delete the preset ``name`` (as :meth:`find` picks it); returns it.

        Raises
        ------
        UnknownPresetError
            None of that name is visible.
        NotAuthorizedError
            ``viewer`` may see it but not change it.
        """
        preset = self.find(name, viewer)
        _require_edit(viewer, preset, "delete")
        with self.jobs.writing() as db:
            db.execute(
                "DELETE FROM presets WHERE scope = ? AND name = ?",
                (preset.scope, preset.name),
            )
        return preset


def check_preset(name: str, code: str, description: str) -> None:
    """Refuse names, code and descriptions out of bounds, with the reason.

    Raises
    ------
    PresetValueError
        Naming the bound broken.
    """
    if not name.strip() or name != name.strip():
        raise PresetValueError(
            "a preset name must be non-empty, without surrounding spaces"
        )
    if len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise PresetValueError(
            f"a preset name has at most {MAX_NAME} printable characters"
        )
    if len(code.encode()) > MAX_CODE:
        raise PresetValueError(f"preset code is over {MAX_CODE // 1024} KiB")
    if len(description) > MAX_DESCRIPTION:
        raise PresetValueError(
            f"a preset description has at most {MAX_DESCRIPTION} characters"
        )


def _where(preset: Preset) -> str:
    if preset.group_id is not None:
        return f" in OMERO group {preset.group_name or preset.group_id}"
    return ""


def _require_edit(viewer: Viewer, preset: Preset, action: str) -> None:
    if viewer.may_edit(preset):
        return
    raise NotAuthorizedError(
        f"cannot {action} preset {preset.name!r}: it belongs to {preset.owner}"
        f"{_where(preset)}, where other members may not change it"
    )
