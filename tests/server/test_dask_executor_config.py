"""``[execution] executor`` and ``dask_scheduler``: from the file or the environment."""

from __future__ import annotations

import pytest

from openhcs_nb.server.config import ConfigError, load_config


def test_when_dask_is_asked_for_in_the_environment_then_the_config_follows():
    config = load_config(
        None,
        env={
            "OPENHCS_NB_EXECUTION_EXECUTOR": "dask",
            "OPENHCS_NB_EXECUTION_DASK_SCHEDULER": "tcp://10.0.0.5:8786",
            "OPENHCS_NB_EXECUTION_DASK_WELLS_IN_FLIGHT": "16",
        },
    )
    assert config.execution.executor == "dask"
    assert config.execution.dask_scheduler == "tcp://10.0.0.5:8786"
    assert config.execution.dask_wells_in_flight == 16


def test_when_dask_has_no_scheduler_then_the_key_path_is_named(tmp_path):
    path = tmp_path / "server.toml"
    path.write_text('[execution]\nexecutor = "dask"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.where == "[execution] dask_scheduler"


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({"OPENHCS_NB_EXECUTION_EXECUTOR": "spark"}, "[execution] executor"),
        (
            {"OPENHCS_NB_EXECUTION_DASK_SCHEDULER": "scheduler:8786"},
            "[execution] dask_scheduler",
        ),
        (
            {"OPENHCS_NB_EXECUTION_DASK_WELLS_IN_FLIGHT": "0"},
            "[execution] dask_wells_in_flight",
        ),
    ],
)
def test_when_a_dask_setting_is_wrong_then_it_is_refused_with_its_key(env, where):
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.where.startswith(where)
