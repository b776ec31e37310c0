"""HTML reprs of a connection and an execution, for notebooks.

They are built from values the caller already has (no IO here) and escape
every string that came from the server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any

from openhcs_nb.client._wells import state_name
from openhcs_nb.client.errors import ConnectionClosed
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol import ExecutionInfo, HelloReply

_COLOURS = {
    "queued": "#888",
    "running": "#1f77b4",
    "done": "#2ca02c",
    "failed": "#d62728",
    "cancelled": "#ff7f0e",
    "server lost": "#d62728",
}


def progress_bar(done: int, failed: int, total: int, width: int = 240) -> str:
    """A two-colour bar: finished wells green, failed wells red."""
    total = max(total, done + failed, 1)
    ok = 100.0 * done / total
    bad = 100.0 * failed / total
    return (
        f'<div style="width:{width}px;height:10px;background:#eee;'
        f'border-radius:3px;overflow:hidden;display:flex">'
        f'<div style="width:{ok:.1f}%;background:#2ca02c"></div>'
        f'<div style="width:{bad:.1f}%;background:#d62728"></div></div>'
    )


def _state(state: str) -> str:
    state = state_name(state)
    colour = _COLOURS.get(state, "#444")
    return f'<b style="color:{colour}">{escape(state)}</b>'


def execution_html(
    execution_id: str,
    plate: str,
    state: str,
    done: int,
    failed: int,
    total: int,
    error: str | None,
) -> str:
    """One execution: id, plate, state, a progress bar and counts."""
    why = f'<div style="color:#d62728">{escape(error)}</div>' if error else ""
    return (
        '<div class="openhcs-execution" style="font-family:sans-serif">'
        f"<div>Execution <code>{escape(execution_id)}</code> on "
        f"<code>{escape(plate)}</code>: {_state(state)}</div>"
        f"{progress_bar(done, failed, total)}"
        f"<div>{done} done, {failed} failed, {total} wells</div>{why}</div>"
    )


def _time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def executions_table(executions: Sequence[ExecutionInfo]) -> str:
    """The user's executions, newest first."""
    if not executions:
        return "<div><i>no executions</i></div>"
    # Rows from a ServerSet say which server owns them; one server's do not.
    several = any(getattr(e, "server", "") for e in executions)
    rows = "".join(
        "<tr>"
        f"<td><code>{escape(e.execution_id)}</code></td>"
        + (f"<td>{escape(getattr(e, 'server', ''))}</td>" if several else "")
        + f"<td>{escape(e.plate)}</td><td>{escape(e.label)}</td>"
        f"<td>{_state(e.state)}</td>"
        f"<td>{progress_bar(e.done, e.failed, e.total, 120)}</td>"
        f"<td>{e.done}/{e.total} ({e.failed} failed)</td>"
        f"<td>{_time(e.submitted_at)}</td>"
        "</tr>"
        for e in executions
    )
    names = ("id", *(("server",) if several else ()), "plate", "label", "state")
    head = "".join(f"<th>{h}</th>" for h in (*names, "", "wells", "submitted"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def connection_html(
    address: str,
    info: HelloReply | None,
    executions: Sequence[ExecutionInfo] | None,
    problem: str | None,
) -> str:
    """Server version, capacity and the user's executions (or why not)."""
    if info is None:
        server = "<i>not connected</i>"
    else:
        gpus = ", ".join(escape(g) for g in info.gpus) or "none"
        server = (
            f"openhcs-nb server {escape(info.server_version)}, protocol "
            f"{info.protocol_version}, user <b>{escape(info.user)}</b>, "
            f"{info.workers} workers, GPUs: {gpus}, "
            f"{len(info.catalogue)} functions"
        )
    if problem is not None:
        body = f'<div style="color:#d62728">{escape(problem)}</div>'
    else:
        body = executions_table(executions or [])
    return (
        '<div class="openhcs-connection" style="font-family:sans-serif">'
        f"<div><b>openhcs</b> <code>{escape(address)}</code></div>"
        f"<div>{server}</div>{body}</div>"
    )


def connection_summary_html(conn: Any, timeout: float) -> str:
    """A Connection's rich repr: the server, and its user's runs (or why not)."""
    problem: str | None = None
    executions: list[ExecutionInfo] | None = None
    if conn._closed:
        problem = "closed"
    else:
        try:
            executions = conn.executions(timeout=timeout)
        except ConnectionClosed:
            problem = "closed"
        except OpenHCSError as exc:
            problem = f"unreachable: {exc}"
    return connection_html(conn.address, conn.server_info, executions, problem)
