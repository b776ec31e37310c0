"""The rules a server configuration must satisfy once loaded.

Binding beyond loopback needs CurveZMQ keys, values stay in range, per-user
limits are consistent, the demo config is loopback-only, and results never
land inside a plate root.
"""

from __future__ import annotations

import msgspec
import pytest
from config_files import write

from openhcs_nb.server.config import (
    ConfigError,
    ServerConfig,
    demo_config,
    is_loopback_address,
    load_config,
)


@pytest.mark.parametrize(
    "address", ["tcp://0.0.0.0:7710", "tcp://*:7710", "tcp://10.0.0.5:7710"]
)
def test_when_binding_beyond_loopback_without_keys_then_validate_refuses(address):
    env = {"OPENHCS_NB_SERVER_COMMAND_ADDRESS": address}
    with pytest.raises(ConfigError, match=r"\[security\] server_secret_key"):
        load_config(None, env=env)


def test_when_binding_beyond_loopback_with_keys_then_curve_is_required(tmp_path):
    env = {
        "OPENHCS_NB_SERVER_EVENT_ADDRESS": "tcp://*:7711",
        "OPENHCS_NB_SECURITY_SERVER_SECRET_KEY": str(tmp_path / "server.key_secret"),
        "OPENHCS_NB_SECURITY_AUTHORIZED_KEYS": str(tmp_path / "clients"),
    }
    assert load_config(None, env=env).curve_required


def test_when_require_curve_on_loopback_then_keys_are_needed():
    with pytest.raises(ConfigError, match=r"authorized_keys|server_secret_key"):
        load_config(None, env={"OPENHCS_NB_SECURITY_REQUIRE_CURVE": "true"})


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("tcp://127.0.0.1:1", True),
        ("tcp://127.0.0.2:1", True),
        ("tcp://localhost:1", True),
        ("tcp://[::1]:1", True),
        ("ipc:///tmp/openhcs.sock", True),
        ("tcp://0.0.0.0:1", False),
        ("tcp://*:1", False),
        ("tcp://[::]:1", False),
        ("tcp://eth0:1", False),
    ],
)
def test_when_address_is_classified_then_only_local_ones_are_loopback(
    address, loopback
):
    assert is_loopback_address(address) is loopback


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OPENHCS_NB_EXECUTION_WORKERS": "0"}, r"\[execution\] workers"),
        ({"OPENHCS_NB_EXECUTION_PREVIEW_SIZE": "8"}, "preview_size"),
        ({"OPENHCS_NB_SERVER_COMMAND_ADDRESS": "127.0.0.1:1"}, "expected 'tcp://"),
        ({"OPENHCS_NB_SERVER_EVENT_ADDRESS": "tcp://127.0.0.1:99999"}, "port must"),
        ({"OPENHCS_NB_SERVER_EVENT_ADDRESS": "tcp://127.0.0.1:7710"}, "must differ"),
        ({"OPENHCS_NB_OMERO_PORT": "70000"}, r"\[omero\] port"),
    ],
)
def test_when_values_are_out_of_range_then_validate_names_them(env, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(None, env=env)


def test_when_demo_config_is_built_then_it_is_loopback_with_next_port(tmp_path):
    config = demo_config(7800, tmp_path)
    assert config.server.command_address == "tcp://127.0.0.1:7800"
    assert config.server.event_address == "tcp://127.0.0.1:7801"
    assert config.plates.demo
    assert config.results.root == tmp_path
    assert not config.curve_required


def test_when_demo_port_is_zero_then_both_sockets_pick_free_ports(tmp_path):
    config = demo_config(0, tmp_path)
    assert config.server.command_address == "tcp://127.0.0.1:0"
    assert config.server.event_address == "tcp://127.0.0.1:0"
    with pytest.raises(ConfigError, match="demo port"):
        demo_config(65535, tmp_path)


def test_when_max_queued_per_user_is_under_execution_then_it_is_refused(tmp_path):
    path = write(tmp_path, "[execution]\nmax_queued_per_user = 3\n")
    with pytest.raises(ConfigError, match=r"\[execution\] max_queued_per_user"):
        load_config(path, env={})
    moved = write(tmp_path, "[limits]\nmax_queued_per_user = 3\n")
    assert load_config(moved, env={}).limits.max_queued_per_user == 3


@pytest.mark.parametrize(
    ("key", "value", "bound"),
    [
        ("requests_per_second", "-1.0", ">= 0"),
        ("request_burst", "0", ">= 1"),
        ("max_running_per_user", "0", ">= 1"),
        ("max_queued_per_user", "0", ">= 1"),
        ("max_previews_per_user", "0", ">= 1"),
        ("well_timeout_s", "-0.5", ">= 0"),
        ("preview_timeout_s", "-1", ">= 0"),
        ("max_command_bytes", "1023", ">= 1024"),
        ("peer_send_budget_bytes", str(1024 * 1024 - 1), f">= {1024 * 1024}"),
        ("event_hwm", "0", ">= 1"),
        ("compile_threads", "0", ">= 1"),
        ("compile_queue", "0", ">= 1"),
        ("compile_timeout_s", "0", "> 0"),
    ],
)
def test_when_limit_is_out_of_range_then_error_names_key_and_bound(
    tmp_path, key, value, bound
):
    path = write(tmp_path, f"[limits]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.where == f"[limits] {key} in {path}"
    assert bound in info.value.reason
    assert info.value.reason.endswith(f", got {value}")  # the value refused


def test_when_limits_are_not_set_then_defaults_apply():
    limits = load_config(None, env={}).limits
    assert (limits.requests_per_second, limits.request_burst) == (50.0, 100)
    assert (limits.max_running_per_user, limits.max_queued_per_user) == (2, 20)
    assert limits.max_previews_per_user == 2
    assert (limits.well_timeout_s, limits.preview_timeout_s) == (1800.0, 120.0)
    assert limits.max_command_bytes == 4 * 1024 * 1024
    assert limits.peer_send_budget_bytes == 256 * 1024 * 1024
    assert limits.event_hwm == 200
    assert (limits.compile_threads, limits.compile_queue) == (2, 64)
    assert limits.compile_timeout_s == 20.0


def test_when_env_overrides_limits_then_they_convert_and_win(tmp_path):
    path = write(tmp_path, "[limits]\nrequest_burst = 10\nmax_queued_per_user = 5\n")
    env = {
        "OPENHCS_NB_LIMITS_REQUEST_BURST": "40",
        "OPENHCS_NB_LIMITS_REQUESTS_PER_SECOND": "0",
        "OPENHCS_NB_LIMITS_WELL_TIMEOUT_S": "12.5",
    }
    limits = load_config(path, env=env).limits
    assert limits.request_burst == 40
    assert limits.requests_per_second == 0.0
    assert limits.well_timeout_s == 12.5
    assert limits.max_queued_per_user == 5  # from the file, not overridden


def test_when_env_limit_is_out_of_range_then_error_names_key_and_variable():
    var = "OPENHCS_NB_LIMITS_COMPILE_THREADS"
    with pytest.raises(ConfigError) as info:
        load_config(None, env={var: "0"})
    assert info.value.where == f"[limits] compile_threads from {var}"
    assert ">= 1" in info.value.reason


def test_when_struct_is_built_in_code_then_validate_still_checks_bounds():
    config = ServerConfig()
    execution = msgspec.structs.replace(config.execution, workers=0)
    broken = msgspec.structs.replace(config, execution=execution)
    assert config.execution.workers >= 1  # the original is untouched
    with pytest.raises(ConfigError, match=r"\[execution\] workers.*>= 1"):
        broken.validate()
    with pytest.raises(AttributeError):
        config.execution.workers = 3  # frozen


def test_when_results_root_is_inside_a_plate_root_then_refused(tmp_path):
    plates = tmp_path / "plates"
    path = write(
        tmp_path,
        f'[plates]\nroots = ["{plates}"]\n[results]\nroot = "{plates / "out"}"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.where == "[results] root"
    assert "inside [plates] roots[0]" in info.value.reason
