"""The Dask dashboard link as the notebook's browser opens it (with or without Hub)."""

from __future__ import annotations

import pytest

from openhcs_nb.jupyter.run_panel import dashboard_href

HUB = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ada/"}


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("http://10.0.0.5:8787/status", {}, "http://10.0.0.5:8787/status"),
        ("http://127.0.0.1:8787/status", HUB, "/user/ada/proxy/8787/status"),
        ("http://localhost:41809/status", HUB, "/user/ada/proxy/41809/status"),
        ("http://node07:8787/status", HUB, "/user/ada/proxy/node07:8787/status"),
        (None, HUB, None),
    ],
)
def test_when_a_dashboard_is_announced_then_the_link_follows_the_hub_proxy_rule(
    url, env, expected
):
    assert dashboard_href(url, env) == expected
