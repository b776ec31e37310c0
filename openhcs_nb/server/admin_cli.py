"""``openhcs-server status`` and ``openhcs-server prune``: an admin's terminal view.

``status`` reads the job store read-only (it never migrates or locks it, so
it is safe beside a running server of any version) and, when ``[metrics]
port`` is set, the live figures of the running server from its endpoint:
workers, restarts, memory, wells counted since it started. ``prune`` applies
``[retention]`` (or the limits given on the command line) once; with
``--dry-run`` it only prints the plan.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from openhcs_nb.server.disk_usage import folder_bytes


def add_admin_parsers(sub: Any) -> None:
    """Register ``status`` and ``prune`` on the ``openhcs-server`` subparsers."""
    status = sub.add_parser("status", help="queue, workers, memory and disk, now")
    status.add_argument("--config", type=Path, help="server.toml")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    prune = sub.add_parser("prune", help="remove old finished runs as [retention] says")
    prune.add_argument("--config", type=Path, help="server.toml")
    prune.add_argument(
        "--dry-run", action="store_true", help="print what would go; change nothing"
    )
    prune.add_argument(
        "--older-than-days", type=float, help="override [retention] max_age_days"
    )
    prune.add_argument(
        "--max-total-gib", type=float, help="override [retention] max_total_gib"
    )
    backup = sub.add_parser(
        "backup", help="copy the job store, consistently, while the server runs"
    )
    backup.add_argument("destination", type=Path, help="the copy to write (0600)")
    backup.add_argument("--config", type=Path, help="server.toml")


def add_key_parsers(keys_sub: Any) -> None:
    """Register ``keys add`` and ``keys revoke`` on the ``keys`` subparsers."""
    add = keys_sub.add_parser("add", help="make USER a key pair and authorize it")
    add.add_argument("user")
    add.add_argument("--config", type=Path, help="server.toml")
    add.add_argument(
        "--out", type=Path, required=True, help="folder for the user's key pair"
    )
    add.add_argument(
        "--force", action="store_true", help="replace the user's existing key"
    )
    add.add_argument("--json", action="store_true", help="print one JSON object")
    revoke = keys_sub.add_parser("revoke", help="remove USER's keys; cut them off")
    revoke.add_argument("user")
    revoke.add_argument("--config", type=Path, help="server.toml")


def run_key_command(args: argparse.Namespace) -> int:
    """``keys add`` / ``keys revoke``; the running server reloads by itself."""
    from openhcs_nb.server.config import load_config
    from openhcs_nb.server.user_keys import add_user_key, revoke_user_key

    config = load_config(args.config)
    if args.keys_command == "revoke":
        count = revoke_user_key(config, args.user)
        print(
            f"openhcs-server: revoked {count} key(s) of {args.user!r}; a running "
            "server drops their connections within seconds"
        )
        return 0
    made = add_user_key(config, args.user, args.out, force=args.force)
    if args.json:
        print(json.dumps(made.as_dict(), indent=2))
        return 0
    print(
        f"openhcs-server: authorized {made.user!r} in {made.authorized_keys}\n"
        f"  OPENHCS_NB_SERVER={made.server_address}\n"
        f"  OPENHCS_NB_SERVER_KEY={made.server_public_key or '(no CurveZMQ)'}\n"
        f"  OPENHCS_NB_CLIENT_KEY={made.secret_key_file}"
    )
    return 0


def run_admin(args: argparse.Namespace) -> int | None:
    """Run ``status`` or ``prune``; None when ``args`` is another command."""
    if args.command == "status":
        return _status(args)
    if args.command == "prune":
        return _prune(args)
    if args.command == "backup":
        return _backup(args)
    return None


# -- status -----------------------------------------------------------------------


def store_figures(jobs_path: Path) -> dict[str, Any]:
    """Executions by state and wells waiting/running per user, read-only."""
    if not jobs_path.is_file():
        return {"executions": {}, "users": {}}
    db = sqlite3.connect(f"file:{jobs_path}?mode=ro", uri=True)
    try:
        states = dict(
            db.execute("SELECT state, count(*) FROM executions GROUP BY state")
        )
        users: dict[str, dict[str, int]] = {}
        for user, state, n in db.execute(
            "SELECT e.user, w.state, count(*) FROM wells w "
            "JOIN executions e ON e.id = w.execution_id "
            "WHERE e.state IN ('QUEUED', 'RUNNING') "
            "AND w.state IN ('PENDING', 'RUNNING') GROUP BY e.user, w.state"
        ):
            users.setdefault(user, {"queued": 0, "running": 0})
            users[user]["queued" if state == "PENDING" else "running"] = n
    finally:
        db.close()
    return {
        "executions": {k.lower(): v for k, v in states.items()},
        "users": users,
    }


def live_figures(address: str, port: int, timeout: float = 3.0) -> dict[str, Any]:
    """The running server's metrics endpoint, summed; ``{"error": ...}`` if down."""
    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://{address}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8")
    except (OSError, urllib.error.URLError) as exc:
        return {"url": url, "error": f"no answer from {url} ({exc})"}
    out: dict[str, Any] = {"url": url, "wells": {}, "workers": {}, "memory": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "openhcs_wells_total":
                out["wells"][labels["outcome"]] = int(sample.value)
            elif sample.name == "openhcs_workers":
                out["workers"][labels["state"]] = int(sample.value)
            elif sample.name == "openhcs_worker_restarts":
                out["restarts"] = out.get("restarts", 0) + int(sample.value)
            elif sample.name == "openhcs_resident_bytes":
                out["memory"][labels["process"]] = int(sample.value)
    return out


def _status(args: argparse.Namespace) -> int:
    from openhcs_nb.server.config import load_config

    config = load_config(args.config)
    root = config.results.root
    report: dict[str, Any] = {
        "results": str(root),
        **store_figures(config.jobs_path),
        "store_bytes": folder_bytes(root),
    }
    if config.metrics.port:
        report["live"] = live_figures(config.metrics.address, config.metrics.port)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for line in format_status(report):
        print(line)
    return 0


def format_status(report: dict[str, Any]) -> list[str]:
    """The status report as lines for a terminal."""
    states = report["executions"]
    order = ("queued", "running", "interrupted", "finished", "failed", "cancelled")
    lines = [
        f"results: {report['results']} ({_size(report['store_bytes'])})",
        "executions: "
        + (", ".join(f"{states[s]} {s}" for s in order if s in states) or "none"),
    ]
    users = report["users"]
    if users:
        lines.append("wells queued / running, per user:")
        width = max(len(u) for u in users)
        for user, counts in sorted(users.items()):
            lines.append(f"  {user:<{width}}  {counts['queued']} / {counts['running']}")
    else:
        lines.append("wells queued / running: none")
    live = report.get("live")
    if live is None:
        lines.append("live figures: off (set [metrics] port to see workers, memory)")
    elif "error" in live:
        lines.append(f"live figures: {live['error']}")
    else:
        workers, memory, wells = live["workers"], live["memory"], live["wells"]
        lines.append(
            f"workers: {workers.get('alive', 0)} alive, {workers.get('dead', 0)} "
            f"dead, {live.get('restarts', 0)} restarts"
        )
        lines.append(
            f"memory: server {_size(memory.get('server', 0))}, "
            f"workers {_size(memory.get('workers', 0))}"
        )
        lines.append(
            f"wells since start: {wells.get('done', 0)} done, "
            f"{wells.get('failed', 0)} failed, {wells.get('timed_out', 0)} timed out"
        )
    return lines


# -- prune ------------------------------------------------------------------------


def _prune(args: argparse.Namespace) -> int:
    from openhcs_nb.server.config import load_config
    from openhcs_nb.server.jobs import JobStore
    from openhcs_nb.server.retention import apply_prune, plan_prune

    config = load_config(args.config)
    policy = config.retention
    if args.older_than_days is not None:
        policy = replace(policy, max_age_days=args.older_than_days)
    if args.max_total_gib is not None:
        policy = replace(policy, max_total_gib=args.max_total_gib)
    if not (policy.max_age_days or policy.max_total_gib):
        print(
            "openhcs-server: nothing to prune by: set [retention] max_age_days or "
            "max_total_gib, or pass --older-than-days / --max-total-gib",
            file=sys.stderr,
        )
        return 2
    root = config.results.root
    with JobStore(config.jobs_path) as store:
        plan = plan_prune(store, root, policy)
        items = plan.remove if args.dry_run else apply_prune(store, root, plan.remove)
    verb = "would remove" if args.dry_run else "removed"
    for item in items:
        print(
            f"{verb} {item.execution_id}  {item.user}  {item.state}  "
            f"{_size(item.bytes)}  ({item.reason})"
        )
    for execution_id in plan.kept_for_writeback:
        print(f"kept {execution_id}: its OMERO write-back has not succeeded")
    freed = sum(item.bytes for item in items)
    print(
        f"openhcs-server: {verb} {len(items)} runs, {_size(freed)} of "
        f"{_size(plan.total_bytes)}"
    )
    return 0


def _backup(args: argparse.Namespace) -> int:
    """SQLite's online backup: a consistent copy, WAL included, no downtime."""
    from openhcs_nb.server.config import load_config

    config = load_config(args.config)
    source = config.jobs_path
    if not source.is_file():
        print(f"openhcs-server: no job store at {source}", file=sys.stderr)
        return 2
    target = args.destination
    if target.exists():
        print(f"openhcs-server: {target} exists; not overwritten", file=sys.stderr)
        return 2
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
        copy = sqlite3.connect(target)
        try:
            db.backup(copy)
        finally:
            copy.close()
    target.chmod(0o600)
    print(
        f"openhcs-server: copied {source} to {target} ({_size(target.stat().st_size)})"
        "; result stores are plain files: copy the results folder beside it"
    )
    return 0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
