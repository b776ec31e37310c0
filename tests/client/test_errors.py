"""Remote error mapping and how IPython shows a remote error."""

from __future__ import annotations

import pytest

from openhcs_nb.client import (
    ERROR_CLASSES,
    RemoteBusy,
    RemoteCompileError,
    RemoteError,
    RemotePipelineCodeError,
    RemoteProtocolError,
    RemoteTimeout,
    RemoteUnknownPlate,
    RemoteUnknownWell,
    ServerUnavailable,
    remote_error,
)
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import ERROR_CODES


def test_when_any_wire_code_then_it_maps_to_a_class_keeping_the_code():
    for code in ERROR_CODES:
        error = remote_error(code, "why")
        assert isinstance(error, ERROR_CLASSES[code])
        assert error.code == code
        assert isinstance(error, OpenHCSError)


def test_when_every_wire_code_then_the_table_has_a_class_for_it():
    assert set(ERROR_CODES) <= set(ERROR_CLASSES)


def test_when_code_is_unknown_then_the_base_class_keeps_it():
    error = remote_error("from_the_future", "new kind of refusal")
    assert type(error) is RemoteError
    assert error.code == "from_the_future"
    assert str(error) == "new kind of refusal"


def test_when_bad_pipeline_code_then_line_and_col_come_from_details():
    error = remote_error(
        "bad_pipeline_code", "line 3, column 4: no", None, {"line": 3, "col": 4}
    )
    assert isinstance(error, RemotePipelineCodeError)
    assert isinstance(error, ValueError)
    assert (error.line, error.col) == (3, 4)


def test_when_compile_error_then_step_and_key_come_from_details():
    error = remote_error("compile_error", "no", None, {"step": "nuclei", "key": "Cy5"})
    assert isinstance(error, RemoteCompileError)
    assert (error.step, error.key) == ("nuclei", "Cy5")


def test_when_plate_or_well_unknown_then_lookup_errors_are_raised():
    assert isinstance(remote_error("unknown_plate", "x"), RemoteUnknownPlate)
    assert isinstance(remote_error("unknown_plate", "x"), LookupError)
    well = remote_error("unknown_well", "x", None, {"well": "Z99"})
    assert isinstance(well, RemoteUnknownWell)
    assert well.well == "Z99"


def test_when_rate_limited_then_retry_after_is_read():
    error = remote_error("rate_limited", "slow down", None, {"retry_after": 5})
    assert isinstance(error, RemoteBusy)
    assert error.retry_after == 5


def test_when_version_mismatch_then_protocol_error():
    assert isinstance(remote_error("version_mismatch", "v0"), RemoteProtocolError)


def test_when_remote_traceback_then_render_shows_it_and_the_message_last():
    trace = 'Traceback (most recent call last):\n  File "w.py", line 9\nValueError: x'
    error = remote_error("internal", "server broke", trace)
    lines = error._render_traceback_()
    assert 'File "w.py", line 9' in "\n".join(lines)
    assert lines[-1] == "RemoteInternalError [internal]: server broke"
    assert not any("test_errors.py" in line for line in lines)


def test_when_no_remote_traceback_then_render_is_the_one_line_message():
    error = remote_error("unknown_plate", "no plate 'x'")
    assert error._render_traceback_() == [
        "RemoteUnknownPlate [unknown_plate]: no plate 'x'"
    ]


def test_when_ipython_shows_the_error_then_remote_frames_replace_local_ones(capsys):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    error = remote_error("internal", "boom", "REMOTE FRAME LINE\nValueError: boom")
    try:
        raise error
    except RemoteError:
        shell.showtraceback()
    finally:
        InteractiveShell.clear_instance()  # leave no shell for other tests
    out = capsys.readouterr().out
    assert "REMOTE FRAME LINE" in out
    assert "RemoteInternalError [internal]: boom" in out
    assert "test_errors.py" not in out


def test_when_timeout_then_it_is_also_a_builtin_timeout_and_unavailable():
    error = RemoteTimeout("no reply")
    assert isinstance(error, TimeoutError)
    assert isinstance(error, ServerUnavailable)
    assert isinstance(error, ConnectionError)
    with pytest.raises(RemoteError):
        raise error
