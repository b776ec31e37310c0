"""``openhcs-server``: run the execution server, manage its keys.

openhcs-server serve --config server.toml
openhcs-server serve --demo [--port N] [--workers N] [--results DIR]
openhcs-server serve ... --parent-pid PID   (stop when PID exits)
openhcs-server keys generate DIR [--name NAME]
openhcs-server keys add USER --config server.toml --out DIR [--force] [--json]
openhcs-server keys revoke USER --config server.toml
openhcs-server check-config server.toml
openhcs-server status --config server.toml [--json]
openhcs-server prune --config server.toml [--dry-run]
openhcs-server backup --config server.toml DEST

Exit status 78 means a broken configuration or job store: an admin must act,
and the systemd unit does not restart on it. SIGHUP re-reads authorized_keys.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msgspec.structs import replace

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.server.admin_cli import (
    add_admin_parsers,
    add_key_parsers,
    run_admin,
    run_key_command,
)
from openhcs_nb.server.log_format import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openhcs-server", description="The openhcs-nb execution server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server until SIGTERM")
    serve.add_argument("--config", type=Path, help="server.toml")
    serve.add_argument(
        "--demo", action="store_true", help="serve the demo plate on 127.0.0.1"
    )
    serve.add_argument("--port", type=int, default=7710, help="demo command port")
    serve.add_argument("--workers", type=int, help="override the worker count")
    serve.add_argument(
        "--results",
        type=Path,
        help="override the results root (a --demo server without it keeps its "
        "history in a temporary folder, removed when it stops)",
    )
    serve.add_argument(
        "--parent-pid",
        type=int,
        help="stop, as on SIGTERM, once the process with this pid has exited",
    )
    serve.add_argument(
        "--plates-root", type=Path, action="append", default=[], help="add a plate root"
    )
    serve.add_argument(
        "--ready-file", type=Path, help="write the bound endpoints here when ready"
    )
    serve.add_argument("--log-level", help="override [logging] level")
    writeback = sub.add_parser(
        "writeback", help="retry writing an execution's results to OMERO"
    )
    writeback.add_argument("execution_id")
    writeback.add_argument("--config", type=Path, help="server.toml")
    check = sub.add_parser(
        "check-config", help="validate a server.toml and list every problem"
    )
    check.add_argument("path", type=Path)
    keys = sub.add_parser("keys", help="CurveZMQ keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    gen = keys_sub.add_parser("generate", help="write a key pair into DIR")
    gen.add_argument("directory", type=Path)
    gen.add_argument("--name", default="server")
    add_key_parsers(keys_sub)
    add_admin_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, omero_gateway: Any = None) -> int:
    """Entry point; returns the exit status.

    ``omero_gateway`` replaces omero-py's gateway factory; only tests pass it.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "keys" and args.keys_command != "generate":
            return run_key_command(args)
        if args.command == "keys":
            from openhcs_nb.server.keys import cmd_keys_generate

            cmd_keys_generate(args.directory, name=args.name)
            return 0
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "writeback":
            return _writeback(args, omero_gateway)
        admin = run_admin(args)
        if admin is not None:
            return admin
        return _serve(args, omero_gateway)
    except OpenHCSError as exc:
        print(f"openhcs-server: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_NO_RESTART if _needs_an_admin(exc) else 2


#: Exit status for faults a restart cannot fix (a broken config or job store);
#: the systemd unit lists it in ``RestartPreventExitStatus`` (EX_CONFIG).
EXIT_NO_RESTART = 78


def _needs_an_admin(exc: OpenHCSError) -> bool:
    from openhcs_nb.server.config import ConfigError
    from openhcs_nb.server.jobs import JobStoreError

    return isinstance(exc, (ConfigError, JobStoreError))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _check_config(args: argparse.Namespace) -> int:
    """Print every refusal of a server.toml, one per line; 0 when it is good."""
    from openhcs_nb.server.config import check_config

    problems = check_config(args.path)
    for line in problems:
        print(line)
    if problems:
        print(
            f"openhcs-server: {len(problems)} problems in {args.path}", file=sys.stderr
        )
        return EXIT_NO_RESTART
    print(f"openhcs-server: {args.path} is a valid configuration")
    return 0


def _writeback(args: argparse.Namespace, omero_gateway: Any = None) -> int:
    """Write back as the submitting user: OMERO_SESSION_KEY must be theirs."""
    from openhcs_nb.omero.writeback import writeback_execution
    from openhcs_nb.server.config import load_config

    config = load_config(args.config)
    report = writeback_execution(
        args.execution_id, config.results.root, config, factory=omero_gateway
    )
    print(f"openhcs-server: wrote {args.execution_id} back to OMERO: {report}")
    return 0


def _serve(args: argparse.Namespace, omero_gateway: Any = None) -> int:
    # Until the config says otherwise (its [logging] section), log as text.
    configure_logging("text", args.log_level or "INFO")
    # A demo without --results gets a history of its own: a fresh server must
    # not list the runs of other notebooks (``--results`` keeps one for good).
    scratch = (
        Path(tempfile.mkdtemp(prefix="openhcs-demo-"))
        if args.demo and args.results is None
        else None
    )
    try:
        return _serve_with(args, omero_gateway, scratch)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _serve_with(
    args: argparse.Namespace, omero_gateway: Any, scratch: Path | None
) -> int:
    from openhcs_nb.server.config import demo_config, load_config
    from openhcs_nb.server.daemon import Server
    from openhcs_nb.server.parent_watch import ParentWatch

    started = time.perf_counter()
    if args.demo:
        from openhcs_nb.plates.demo import demo_plate

        config = demo_config(args.port, args.results or scratch)
        demo_plate()  # generate once, before we report ready
    else:
        config = load_config(args.config)
    configure_logging(config.logging.format, args.log_level or config.logging.level)
    if args.workers:
        config = replace(
            config, execution=replace(config.execution, workers=args.workers)
        )
    if args.results:
        config = replace(config, results=replace(config.results, root=args.results))
    if args.plates_root:
        roots = (*config.plates.roots, *args.plates_root)
        config = replace(config, plates=replace(config.plates, roots=roots))
    server = Server(config, omero_gateway=omero_gateway)
    watch = None
    if args.parent_pid is not None:
        watch = ParentWatch(args.parent_pid, server.request_stop).start()
    server.start()
    ready = {
        "command": server.command_endpoint,
        "events": server.event_endpoint,
        "results": str(config.results.root),
        "metrics": server.ops.metrics_port if server.ops else 0,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(args.ready_file)
    print(
        f"openhcs-server ready in {ready['seconds']} s: commands {ready['command']}, "
        f"events {ready['events']}",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        if watch is not None:
            watch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
