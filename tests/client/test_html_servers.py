"""The executions table names each run's server when the rows come from several."""

from __future__ import annotations

from openhcs_nb.client._html import executions_table
from openhcs_nb.client._server_choice import ServerExecutionInfo
from openhcs_nb.protocol.records import ExecutionInfo


def _row(cls, execution_id: str, **extra) -> ExecutionInfo:
    return cls(
        execution_id=execution_id,
        plate="demo",
        state="running",
        user="alice",
        submitted_at=0.0,
        total=4,
        done=1,
        **extra,
    )


def test_rows_of_several_servers_show_their_server():
    html = executions_table(
        [
            _row(ServerExecutionInfo, "ex-000000000001", server="tcp://a:7710"),
            _row(ServerExecutionInfo, "ex-000000000002", server="tcp://b:7710"),
        ]
    )
    assert "<th>server</th>" in html
    assert "<td>tcp://a:7710</td>" in html and "<td>tcp://b:7710</td>" in html
    assert html.index("ex-000000000001") < html.index("tcp://a:7710")


def test_rows_of_one_server_have_no_server_column():
    html = executions_table([_row(ExecutionInfo, "ex-000000000003")])
    assert "server" not in html
    assert html.count("<th>") == 7
