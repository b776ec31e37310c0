"""Loading the server configuration from TOML and OPENHCS_NB_* variables.

What a loaded configuration must satisfy (addresses, keys, ranges, limits) is
in ``test_config_rules.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest
import tomllib
from config_files import write

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server.config import (
    ConfigError,
    ServerConfig,
    check_config,
    env_name,
    load_config,
)

EXAMPLE = Path(__file__).parents[2] / "server" / "deploy" / "server.example.toml"


def settings() -> dict[str, list[str]]:
    """Every section and its keys, read from the Structs (the one declaration)."""
    return {
        section.name: [key.name for key in msgspec.structs.fields(section.type)]
        for section in msgspec.structs.fields(ServerConfig)
    }


def test_when_no_file_and_no_env_then_defaults_bind_loopback():
    config = load_config(None, env={})
    assert config.server.command_address == "tcp://127.0.0.1:7710"
    assert config.server.event_address == "tcp://127.0.0.1:7711"
    assert config.server.max_message_bytes == 64 * 1024 * 1024
    assert config.execution.max_concurrent_executions == 2
    assert config.execution.workers >= 1
    assert not config.curve_required
    assert config.audit_path == config.results.root / "audit.jsonl"


def test_when_file_sets_values_then_they_are_typed_and_paths_resolved(tmp_path):
    path = write(
        tmp_path,
        """
        [plates]
        roots = ["plates", "/data/screens"]
        demo = true
        [results]
        root = "results"
        [execution]
        gpus = [0, 1, 3]
        cancel_grace_s = 2
        [audit]
        path = "~/audit.jsonl"
        """,
    )
    config = load_config(path, env={})
    assert config.plates.roots == (tmp_path / "plates", Path("/data/screens"))
    assert config.plates.demo is True
    assert config.results.root == tmp_path / "results"
    assert config.execution.gpus == (0, 1, 3)
    assert config.execution.workers == 3  # one per GPU unless set
    assert config.execution.cancel_grace_s == 2.0
    assert config.audit_path == Path("~/audit.jsonl").expanduser()
    assert config.jobs_path == tmp_path / "results" / "jobs.sqlite3"


def test_when_env_overrides_then_every_type_converts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {
        "OPENHCS_NB_SERVER_COMMAND_ADDRESS": "tcp://127.0.0.1:9000",
        "OPENHCS_NB_EXECUTION_WORKERS": " 7 ",
        "OPENHCS_NB_EXECUTION_CANCEL_GRACE_S": "0.5",
        "OPENHCS_NB_EXECUTION_GPUS": "0, 2",
        "OPENHCS_NB_PLATES_DEMO": "yes",
        "OPENHCS_NB_PLATES_ROOTS": "/a,b,",
        "OPENHCS_NB_RESULTS_ROOT": "out",
        "OPENHCS_NB_OMERO_PORT": "14064",
    }
    path = write(tmp_path, "[execution]\nworkers = 2\n")
    config = load_config(path, env=env)
    assert config.server.command_address == "tcp://127.0.0.1:9000"
    assert config.execution.workers == 7
    assert config.execution.cancel_grace_s == 0.5
    assert config.execution.gpus == (0, 2)
    assert config.plates.demo is True
    assert config.plates.roots == (Path("/a"), tmp_path / "b")
    assert config.results.root == tmp_path / "out"
    assert config.omero.port == 14064


def test_when_env_value_is_empty_then_optional_path_is_unset(tmp_path):
    path = write(tmp_path, '[security]\nauthorized_keys = "keys"\n')
    env = {"OPENHCS_NB_SECURITY_AUTHORIZED_KEYS": ""}
    assert load_config(path, env=env).security.authorized_keys is None


def test_when_every_field_has_an_env_name_then_names_follow_the_pattern():
    names = {
        env_name(section, key) for section, keys in settings().items() for key in keys
    }
    assert "OPENHCS_NB_SERVER_COMMAND_ADDRESS" in names
    assert "OPENHCS_NB_LIMITS_MAX_QUEUED_PER_USER" in names
    assert "OPENHCS_NB_EXECUTION_MAX_QUEUED_PER_USER" not in names
    assert all(name.isupper() and name.startswith("OPENHCS_NB_") for name in names)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("OPENHCS_NB_EXECUTION_WORKERS", "four", "expected an integer"),
        ("OPENHCS_NB_EXECUTION_CANCEL_GRACE_S", "soon", "expected a number"),
        ("OPENHCS_NB_PLATES_DEMO", "maybe", "expected a boolean"),
        ("OPENHCS_NB_EXECUTION_GPUS", "0,x", "expected an integer"),
    ],
)
def test_when_env_value_is_malformed_then_error_names_variable(var, value, expected):
    with pytest.raises(ConfigError, match=f"{var}: {expected}") as info:
        load_config(None, env={var: value})
    assert info.value.code == "config_error"
    assert isinstance(info.value, OpenHCSError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[server]\ncommand_adress = 'tcp://127.0.0.1:1'\n",
            r"\[server\] command_adress",
        ),
        ("[excecution]\nworkers = 1\n", "'excecution'.*unknown section"),
        ("[execution]\nworkers = '4'\n", r"\[execution\] workers.*expected `int`"),
        ("[plates]\ndemo = 1\n", r"\[plates\] demo.*expected `bool`"),
        ("[plates]\nroots = '/data'\n", r"\[plates\] roots.*expected a list"),
        ("[execution]\ngpus = [0, 'a']\n", r"gpus\[1\].*expected `int`"),
        ("[execution]\ngpus = [0, -1]\n", r"gpus\[1\].*>= 0, got -1"),
        ("server = 1\n", r"\[server\].*expected a table"),
        ("[omero]\ntest_double = 'd.json'\n", r"\[omero\] test_double.*unknown key"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_when_file_is_wrong_then_error_names_the_key(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text), env={})


def test_when_file_is_missing_then_error_names_it(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


def test_when_env_has_unknown_server_key_then_it_is_reported(caplog):
    with caplog.at_level(logging.WARNING):
        load_config(None, env={"OPENHCS_NB_EXECUTION_WORKER": "3"})
    assert "OPENHCS_NB_EXECUTION_WORKER" in caplog.text


def test_when_example_config_is_loaded_then_it_covers_every_setting(tmp_path):
    parsed = tomllib.loads(EXAMPLE.read_text())
    # The example writes out every key (commented ones excepted) of every section.
    commented = {
        line.split("=")[0].strip("# ").strip()
        for line in EXAMPLE.read_text().splitlines()
        if line.startswith("# ") and "=" in line
    }
    for section, keys in settings().items():
        assert set(keys) <= set(parsed.get(section, {})) | commented, section
    config = load_config(EXAMPLE, env={})
    assert config.server.command_address.startswith("tcp://127.0.0.1:")


def test_when_key_is_unknown_then_error_names_its_path_and_the_known_keys(tmp_path):
    path = write(tmp_path, "[limits]\nmax_queud_per_user = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.where == f"[limits] max_queud_per_user in {path}"
    assert "unknown key" in info.value.reason
    assert "max_queued_per_user" in info.value.reason


def test_when_settings_are_declared_then_each_has_a_description():
    info = msgspec.inspect.type_info(ServerConfig)
    for section in info.fields:
        for key in section.type.fields:
            assert isinstance(key.type, msgspec.inspect.Metadata), key.name
            assert key.type.extra_json_schema["description"], key.name


def test_when_file_is_good_then_check_config_reports_nothing(tmp_path):
    path = write(tmp_path, "[limits]\nrequest_burst = 5\n[execution]\nworkers = 2\n")
    assert check_config(path, env={}) == []
    assert check_config(EXAMPLE, env={}) == []


def test_when_file_has_three_mistakes_then_check_config_lists_all_three(tmp_path):
    path = write(
        tmp_path,
        """
        [limits]
        request_burst = 0
        [omero]
        test_double = "double.json"
        [execution]
        workers = "many"
        """,
    )
    lines = check_config(path, env={})
    assert len(lines) == 3, lines
    assert lines[0].startswith("[limits] request_burst: ") and ">= 1" in lines[0]
    assert lines[1].startswith("[omero] test_double: unknown key")
    assert lines[2].startswith("[execution] workers: expected `int`")


def test_when_check_config_meets_env_and_cross_key_mistakes_then_it_lists_them(
    tmp_path,
):
    path = write(tmp_path, "[excecution]\nworkers = 1\n")
    env = {"OPENHCS_NB_EXECUTION_WORKERS": "four"}
    lines = check_config(path, env=env)
    assert lines == [
        "OPENHCS_NB_EXECUTION_WORKERS: expected an integer, got 'four'",
        lines[1],
    ]
    assert lines[1].startswith("'excecution': unknown section")
    same = {"OPENHCS_NB_SERVER_EVENT_ADDRESS": "tcp://127.0.0.1:7710"}
    assert check_config(write(tmp_path, ""), env=same) == [
        "[server] event_address: must differ from [server] command_address"
    ]
    assert check_config(tmp_path / "absent.toml", env={})[0].endswith("not found")


def test_when_file_sets_an_empty_optional_path_then_it_is_unset(tmp_path):
    path = write(tmp_path, '[audit]\npath = ""\n[security]\nauthorized_keys = ""\n')
    config = load_config(path, env={})
    assert config.audit.path is None and config.security.authorized_keys is None
    assert config.audit_path == config.results.root / "audit.jsonl"
