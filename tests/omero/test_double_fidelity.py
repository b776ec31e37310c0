"""The double behaves like omero-py where our code depends on it.

Each test states OMERO's behaviour with a real omero-py object where one can
be built offline (a ``BlitzGateway`` without a server, ``PermissionsI``,
``ServiceOptsDict``, ``PlateWrapper``), then checks the double against it.
"""

from __future__ import annotations

import omero
import omero.clients
import pytest
from omero.gateway import BlitzGateway, ServiceOptsDict
from omero_double import factory_for

from openhcs_nb.omero.session import join_session

CAROL = "carol-session-key-1234567890"


@pytest.fixture
def blitz():
    """A real, unconnected BlitzGateway with its proxies made (no server)."""
    gateway = BlitzGateway(host="nowhere.invalid", port=4064)
    gateway._createProxies()  # what connect() does once the session is joined
    gateway.SERVICE_OPTS = gateway.createServiceOptsDict()  # ... and this
    yield gateway
    gateway.c.getCommunicator().destroy()


def test_when_raw_pixels_store_is_asked_twice_then_both_gateways_give_one(blitz, bob):
    real_shared = blitz.createRawPixelsStore() is blitz.createRawPixelsStore()
    gateway = bob.gateway
    double_shared = gateway.createRawPixelsStore() is gateway.createRawPixelsStore()
    assert real_shared is True
    assert double_shared is real_shared


def test_when_session_is_joined_then_service_opts_name_no_group(blitz, bob):
    assert isinstance(blitz.SERVICE_OPTS, ServiceOptsDict)
    assert type(bob.gateway.SERVICE_OPTS) is type(blitz.SERVICE_OPTS)
    # no group: the server uses the session's default group
    assert blitz.SERVICE_OPTS.getOmeroGroup() is None
    assert bob.gateway.SERVICE_OPTS.getOmeroGroup() is None


def _with_member(server, perms: str) -> None:
    """Carol joins bob's group 3, whose permissions become ``perms``."""
    server.doc["groups"]["3"]["perms"] = perms
    server.doc["users"]["carol"] = {"id": 8, "groups": [3]}
    server.sessions[CAROL] = "carol"


@pytest.mark.parametrize(
    ("perms", "may_read", "may_annotate"),
    [
        ("rw----", False, False),  # private: members see only their own data
        ("rwr---", True, False),  # read-only
        ("rwra--", True, True),  # read-annotate
        ("rwrw--", True, True),  # read-write
    ],
)
def test_when_a_member_uses_another_members_plate_then_group_permissions_decide(
    server, settings, perms, may_read, may_annotate
):
    real = omero.model.PermissionsI(perms)  # omero-py reads the same string
    assert (real.isGroupRead(), real.isGroupAnnotate()) == (may_read, may_annotate)
    _with_member(server, perms)
    carol = join_session(CAROL, config=settings, factory=factory_for(server))
    carol.gateway.SERVICE_OPTS.setOmeroGroup("3")
    wrapper = carol.gateway.getObject("Plate", 101)  # bob's plate
    assert (wrapper is not None) is may_read
    if wrapper is not None:
        assert wrapper.canAnnotate() is may_annotate  # omero-py's PlateWrapper
    user = server.user(CAROL)
    assert server.can_annotate(user, server.plates[101]) is may_annotate
    carol.close()


def test_when_getobject_runs_then_service_opts_choose_the_group(bob):
    gateway = bob.gateway  # bob's default group is 3; plate 106 is in group 11
    assert gateway.getObject("Plate", 106) is None
    gateway.SERVICE_OPTS.setOmeroGroup("11")
    assert gateway.getObject("Plate", 106) is not None
    gateway.SERVICE_OPTS.setOmeroGroup("3")
    assert gateway.getObject("Plate", 106) is None
    gateway.SERVICE_OPTS.setOmeroGroup("-1")
    assert gateway.getObject("Plate", 106) is not None


def _roi(image_id: int):
    roi = omero.model.RoiI()
    roi.image = omero.model.ImageI(image_id, False)
    return roi


def test_when_rois_are_saved_then_the_ctx_group_must_be_the_images(bob, server):
    update = bob.gateway.getUpdateService()
    own_image = server.plates[101]["wells"][0]["samples"][0]["image"]  # group 3
    other_image = server.plates[106]["wells"][0]["samples"][0]["image"]  # group 11
    with pytest.raises(omero.GroupSecurityViolation):
        update.saveAndReturnArray([_roi(own_image)], {"omero.group": "11"})
    with pytest.raises(omero.SecurityViolation):  # read-only group, alice's image
        update.saveAndReturnArray([_roi(other_image)], {"omero.group": "11"})
    saved = update.saveAndReturnArray([_roi(own_image)], {"omero.group": "3"})
    assert saved[0].id is not None and saved[0].id.val in server.saved


def test_when_link_is_saved_with_all_groups_ctx_then_refused(bob, server):
    link = omero.model.PlateAnnotationLinkI()
    link.parent = omero.model.PlateI(101, False)
    link.child = omero.model.MapAnnotationI()
    with pytest.raises(omero.SecurityViolation):
        bob.gateway.getUpdateService().saveAndReturnObject(link, {"omero.group": "-1"})
    link.id = None
    saved = bob.gateway.getUpdateService().saveAndReturnObject(
        link, {"omero.group": "3"}
    )
    assert saved.id.val in {link.id.val for link in server.links}
