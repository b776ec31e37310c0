"""The app inside a facility's real OMERO.web (``pytest -m omero``).

Set ``OMERO_WEB_URL`` (e.g. https://omero.example.org), ``OMERO_USER`` and
``OMERO_PASSWORD``; optionally ``OMERO_WEB_PLATE`` (a plate id the user may
read) and ``OMERO_WEB_SERVER_ID`` (the server's index on the login form, 1
by default). The test logs in through OMERO.web's own login form, as a
person would, and checks the app's pages answer as that user.
"""

from __future__ import annotations

import http.cookiejar
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

pytestmark = pytest.mark.omero
_NEEDED = ("OMERO_WEB_URL", "OMERO_USER", "OMERO_PASSWORD")
_MISSING = [name for name in _NEEDED if not os.environ.get(name)]


@pytest.fixture(scope="module")
def web():
    """``get(path) -> (status, text)`` of a logged-in OMERO.web session."""
    if _MISSING:
        pytest.skip(f"needs a real OMERO.web: set {', '.join(_MISSING)}")
    base = os.environ["OMERO_WEB_URL"].rstrip("/")
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(path: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(base + path, data=body)
        request.add_header("Referer", base + path)
        try:
            with opener.open(request, timeout=60) as reply:
                return reply.status, reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    get("/webclient/login/")
    token = next(c.value for c in jar if c.name == "csrftoken")
    status, _ = get(
        "/webclient/login/",
        {
            "username": os.environ["OMERO_USER"],
            "password": os.environ["OMERO_PASSWORD"],
            "server": os.environ.get("OMERO_WEB_SERVER_ID", "1"),
            "csrfmiddlewaretoken": token,
        },
    )
    assert status == 200
    return get


def test_when_logged_in_then_the_status_page_names_this_user(web):
    status, text = web("/openhcs/")
    assert status == 200, text[:500]
    assert f"<strong>{os.environ['OMERO_USER']}</strong>" in text


def test_when_logged_in_then_the_pipelines_page_answers(web):
    status, text = web("/openhcs/pipelines/")
    assert status == 200, text[:500]
    assert "New pipeline" in text


def test_when_a_plate_is_named_then_its_launch_page_and_panel_answer(web):
    plate = os.environ.get("OMERO_WEB_PLATE")
    if not plate:
        pytest.skip("set OMERO_WEB_PLATE to a plate id this user may read")
    status, text = web(f"/openhcs/execute/{plate}/")
    assert status == 200, text[:500]
    status, panel = web(f"/openhcs/plate/{plate}/panel/")
    assert status == 200 and f'data-plate="{plate}"' in panel
