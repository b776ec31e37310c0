"""How an Execution shows in IPython: snapshot alone, live panel once registered."""

from __future__ import annotations

import IPython.display
import pytest
from IPython.core.interactiveshell import InteractiveShell

import openhcs_nb
import openhcs_nb.client
from openhcs_nb.client._dispatch import CallbackThread
from openhcs_nb.client.execution import Execution
from openhcs_nb.jupyter._display import show_execution


@pytest.fixture
def shell():
    ip = InteractiveShell.instance()
    yield ip
    InteractiveShell.clear_instance()  # later modules test life outside IPython


@pytest.fixture
def execution():
    dispatcher = CallbackThread("test-callbacks")
    yield Execution(object(), "ex-42", "plate-7", dispatcher=dispatcher, wells=["A01"])
    dispatcher.close()


@pytest.fixture
def shown(monkeypatch):
    """What ``IPython.display.display`` was asked to show."""
    objects: list[object] = []
    monkeypatch.setattr(IPython.display, "display", objects.append)
    return objects


def registered(ip: InteractiveShell) -> object:
    formatter = ip.display_formatter.ipython_display_formatter
    return formatter.lookup_by_type(Execution)


def test_when_nothing_is_registered_then_an_execution_shows_its_html_snapshot(
    shell, execution, shown
):
    data, _ = shell.display_formatter.format(execution)
    assert "ex-42" in data["text/html"]
    assert "plate-7" in data["text/html"]
    assert shown == []


def test_when_the_extension_is_loaded_then_an_execution_shows_a_live_panel(
    shell, execution, shown
):
    from openhcs_nb.jupyter.run_panel import RunPanel

    shell.run_line_magic("load_ext", "openhcs_nb")
    data, _ = shell.display_formatter.format(execution)
    assert data == {}  # IPython left the showing to our function
    [panel] = shown
    assert isinstance(panel, RunPanel)
    assert panel.execution is execution
    assert "ex-42" in panel.title.value


def test_when_connect_runs_in_a_kernel_then_the_live_panel_is_registered(
    shell, monkeypatch
):
    opened = object()
    monkeypatch.setattr(openhcs_nb.client, "connect", lambda *a, **k: opened)
    with pytest.raises(KeyError):
        registered(shell)
    assert openhcs_nb.connect("tcp://127.0.0.1:1") is opened
    assert registered(shell) is show_execution


def test_when_connect_runs_outside_ipython_then_nothing_is_registered(monkeypatch):
    assert InteractiveShell.initialized() is False
    opened = object()
    calls: list[tuple[object, ...]] = []

    def fake_connect(*args: object, **kwargs: object) -> object:
        calls.append((*args, *kwargs.values()))
        return opened

    monkeypatch.setattr(openhcs_nb.client, "connect", fake_connect)
    assert openhcs_nb.connect("tcp://h:1", timeout=2.0) is opened
    assert calls == [("tcp://h:1", None, 2.0)]
    assert InteractiveShell.initialized() is False
