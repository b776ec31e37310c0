"""Issue 11: presets are stored by the server, checked by its safe loader, and
shared within OMERO groups as the group's permissions allow."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("omero", reason="the omero extra (omero-py) is not installed")

from web_server import (
    ALICE,
    BOB,
    CAROL,
    ERIN,
    FRANK,
    FRONTEND,
    connect_as,
    start_web_server,
)

from openhcs_nb import load_pipeline, nuclei_count_pipeline
from openhcs_nb.client.errors import (
    RemoteNotAuthorized,
    RemotePipelineCodeError,
    RemotePresetExists,
    RemoteUnknownPreset,
)
from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.server import _jobs_schema as schema
from openhcs_nb.server.jobs import JobStore
from openhcs_nb.server.presets import (
    PresetExistsError,
    PresetStore,
    UnknownPresetError,
    Viewer,
)

CODE = nuclei_count_pipeline().to_code()
BAD = "import os\nos.system('touch /tmp/owned')\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory, plates_root):
    process, users = start_web_server(tmp_path_factory.mktemp("presets"), plates_root)
    yield process, users
    process.kill()


@pytest.fixture(scope="module")
def people(server):
    """A notebook connection per person, each with their own OMERO session."""
    process, users = server
    conns = {
        name: connect_as(process, users, name, session)
        for name, session in (
            ("alice", ALICE),
            ("bob", BOB),
            ("carol", CAROL),
            ("erin", ERIN),
            ("frank", FRANK),
        )
    }
    yield conns
    for conn in conns.values():
        conn.close()


def test_when_valid_code_is_saved_then_it_is_stored_in_the_sessions_group(people):
    saved = people["bob"].save_preset("nuclei", CODE, description="count nuclei")
    assert (saved.name, saved.code, saved.description) == (
        "nuclei",
        CODE,
        "count nuclei",
    )
    assert saved.owner == "omero:bob" and saved.group == "screening"
    assert saved.editable and saved.created_at == saved.updated_at
    assert people["bob"].preset("nuclei") == saved


def test_when_code_is_refused_then_the_loaders_one_line_reason_comes_back(
    server, people
):
    with pytest.raises(PipelineCodeError) as local:
        load_pipeline(BAD)
    with pytest.raises(RemotePipelineCodeError) as remote:
        people["bob"].save_preset("owned", BAD)
    assert remote.value.message == str(local.value)
    assert (remote.value.line, remote.value.col) == (local.value.line, local.value.col)
    assert "\n" not in remote.value.message and remote.value.remote_traceback is None
    with pytest.raises(RemoteUnknownPreset):
        people["bob"].preset("owned")
    audit = (server[0].results_root / "audit.jsonl").read_text().splitlines()
    refused = [
        json.loads(line)
        for line in audit
        if '"save_preset"' in line and '"refused"' in line
    ]
    assert refused and refused[-1]["user"] == "bob"
    assert refused[-1]["detail"].startswith("bad_pipeline_code: ")


def test_when_a_group_member_asks_then_they_see_it_but_other_groups_do_not(people):
    people["bob"].save_preset("shared-count", CODE)
    seen = people["frank"].preset("shared-count")  # frank is in screening too
    assert seen.owner == "omero:bob" and not seen.editable
    assert "shared-count" in {p.name for p in people["frank"].presets()}
    with pytest.raises(RemoteUnknownPreset):
        people["alice"].preset("shared-count")  # alice is not in screening
    assert "shared-count" not in {p.name for p in people["alice"].presets()}


def test_when_a_member_of_a_read_only_group_deletes_anothers_preset_then_it_is_refused(
    people,
):
    saved = people["carol"].save_preset("ro-count", CODE)
    assert saved.group == "read-only"
    seen = people["alice"].preset("ro-count")  # alice is a member of read-only
    assert seen.code == CODE and not seen.editable
    with pytest.raises(RemoteNotAuthorized, match="may not change it"):
        people["alice"].delete_preset("ro-count")
    assert people["carol"].preset("ro-count").code == CODE
    people["carol"].delete_preset("ro-count")
    with pytest.raises(RemoteUnknownPreset):
        people["alice"].preset("ro-count")


def test_when_a_group_is_read_write_then_members_replace_and_delete(people):
    people["erin"].save_preset("rw-count", CODE, description="v1")
    with pytest.raises(RemotePresetExists):
        people["frank"].save_preset("rw-count", CODE)
    other = nuclei_count_pipeline().to_code().replace("nuclei", "nuclei2", 1)
    load_pipeline(other)
    replaced = people["frank"].save_preset(
        "rw-count", other, description="v2", replace=True
    )
    assert replaced.owner == "omero:erin" and replaced.editable
    assert people["erin"].preset("rw-count").description == "v2"
    people["frank"].delete_preset("rw-count")
    with pytest.raises(RemoteUnknownPreset):
        people["erin"].preset("rw-count")


def test_when_the_frontend_acts_for_a_user_then_it_sees_their_presets(server, people):
    process, users = server
    people["bob"].save_preset("web-visible", CODE)
    with connect_as(process, users, FRONTEND, FRANK) as web:
        assert web.preset("web-visible").owner == "omero:bob"
    with connect_as(process, users, FRONTEND, ALICE) as web:
        with pytest.raises(RemoteUnknownPreset):
            web.preset("web-visible")
        web.save_preset("from-web", CODE)
    assert people["alice"].preset("from-web").owner == "omero:alice"


# --- the store itself ------------------------------------------------------------


def _viewer(name: str, group: int | None = None, **sets: set[int]) -> Viewer:
    return Viewer(
        name,
        frozenset({name}),
        group,
        None if group is None else f"g{group}",
        frozenset(sets.get("groups", set())),
        frozenset(sets.get("read_write", set())),
    )


def test_when_saved_without_omero_then_only_the_owner_sees_it(tmp_path):
    store = PresetStore(JobStore(tmp_path / "jobs.sqlite3"))
    ann, ben = _viewer("ann"), _viewer("ben")
    store.save(ann, "p", CODE)
    store.save(ben, "p", CODE, "bens")  # names are unique per owner
    assert store.find("p", ann).owner == "ann"
    assert store.find("p", ben).description == "bens"
    with pytest.raises(PresetExistsError):
        store.save(ann, "p", CODE)
    store.delete(ann, "p")
    with pytest.raises(UnknownPresetError):
        store.find("p", ann)
    assert [p.owner for p in store.visible(ben)] == ["ben"]


def test_when_an_old_store_opens_then_it_migrates_and_keeps_its_executions(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    with JobStore(path) as jobs:
        record = jobs.create_execution("ann", "small.ome.zarr", CODE, ["A01"], {})
    db = sqlite3.connect(path)
    db.execute("DROP TABLE presets")  # what a schema-2 server left behind
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    with JobStore(path) as jobs:
        assert jobs.get_execution(record.id).pipeline_code == CODE
        store = PresetStore(jobs)
        saved = store.save(_viewer("ann"), "after-upgrade", CODE)
        assert store.find("after-upgrade", _viewer("ann")) == saved
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    db.close()
