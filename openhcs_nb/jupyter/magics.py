"""The ``%openhcs_*`` magics: connect, build a pipeline cell by cell, run, watch.

Options are parsed with ``IPython.core.magic_arguments`` so ``%openhcs_run?``
shows the help; a trailing ``# comment`` is dropped first, since users paste
magics with comments as they would Python. Whatever can be checked before a
run is submitted (plate, wells, viewer, napari's display) is checked first,
so a refused run leaves nothing behind on the server. Mistakes a user can fix
(an unknown function, a bad parameter, an unknown plate, no connection) are
reported as one-line ``UsageError``s, never a traceback; failures on the
server raise :class:`RemoteError`, whose IPython rendering shows the remote
traceback. State (the connection, the demo server, the last plate and run)
lives on the magics instance, one per shell.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import HTML, display

from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.jupyter._magic_args import (
    NO_MEASUREMENTS,
    key_values,
    measures,
    parse_args,
    plate_ref,
    well_range,
)


@magics_class
class OpenHCSMagics(Magics):
    """Magics bound to one IPython shell."""

    def __init__(self, shell: Any):
        super().__init__(shell)
        self.connection: Any = None
        self.server: Any = None
        self.plate: str | None = None
        self.pipeline_name: str | None = None
        self.last_run: Any = None

    # -- connection ----------------------------------------------------------------

    @magic_arguments()
    @argument(
        "address",
        nargs="*",
        help="tcp://host:port of the server, or several: runs go to the least "
        "loaded (default: $OPENHCS_NB_SERVER)",
    )
    @argument(
        "--server-key",
        help="the server's public key file, or one per server, comma separated "
        "(default: $OPENHCS_NB_SERVER_KEY)",
    )
    @argument(
        "--client-key",
        help="your secret key file, its public half beside it "
        "(default: $OPENHCS_NB_CLIENT_KEY)",
    )
    @argument("--demo", action="store_true", help="start a local demo server")
    @line_magic
    def openhcs_connect(self, line: str) -> Any:
        """Connect to an openhcs-nb execution server (or start the demo one).

        On JupyterHub the facility sets OPENHCS_NB_SERVER, OPENHCS_NB_SERVER_KEY
        and OPENHCS_NB_CLIENT_KEY, so a bare ``%openhcs_connect`` is enough;
        ``OMERO_SESSION_KEY`` is sent too when set. Several addresses (or
        several in OPENHCS_NB_SERVER) connect to all of those servers; each
        run then goes to the least loaded (docs/several-servers.md).
        """
        args = parse_args(self.openhcs_connect, line)
        from openhcs_nb.client import connect

        env = os.environ
        server_key = args.server_key or env.get("OPENHCS_NB_SERVER_KEY")
        secret = args.client_key or env.get("OPENHCS_NB_CLIENT_KEY")
        if args.demo:
            address = self._start_demo()
            self.plate = self.plate or "demo"
            server_key = secret = None
        elif args.address or env.get("OPENHCS_NB_SERVER"):
            address = args.address or env["OPENHCS_NB_SERVER"]
        else:
            raise UsageError(
                "give a server address (tcp://host:port), set OPENHCS_NB_SERVER, "
                "or use --demo"
            )
        keys = (Path(secret.removesuffix("_secret")), Path(secret)) if secret else None
        if self.connection is not None:
            self.connection.close()
        try:
            self.connection = connect(
                address,
                server_key=server_key,
                client_keys=keys if server_key else None,
                omero_session=env.get("OMERO_SESSION_KEY"),
            )
        except OSError as exc:
            where = address if isinstance(address, str) else " ".join(address)
            raise UsageError(f"cannot connect to {where}: {exc}") from None
        return self.connection

    @line_magic
    def openhcs_disconnect(self, line: str) -> None:
        """Close the connection; stop the demo server if this notebook started it."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _start_demo(self) -> str:
        if self.server is None or not self.server.running:
            from openhcs_nb.server.local import LocalServer

            self.server = LocalServer(
                ["--demo", "--port", "0", "--log-level", "WARNING"]
            )
            self.server.start()
            atexit.register(self.server.stop)
        return self.server.address

    def _conn(self) -> Any:
        if self.connection is None:
            raise UsageError(
                "not connected: run %openhcs_connect tcp://host:port "
                "(or %openhcs_connect --demo) first"
            )
        return self.connection

    # -- pipelines -----------------------------------------------------------------

    @magic_arguments()
    @argument("name", help="variable that receives the pipeline")
    @cell_magic
    def openhcs_pipeline(self, line: str, cell: str) -> Any:
        """Load the cell (pipeline code) with the safe loader into ``name``."""
        from openhcs_nb.loading import load_pipeline

        args = parse_args(self.openhcs_pipeline, line)
        try:
            pipeline = load_pipeline(cell)
        except PipelineCodeError as exc:
            raise UsageError(f"pipeline code refused: {exc}") from None
        self.shell.user_ns[args.name] = pipeline
        self.pipeline_name = args.name
        return pipeline

    @magic_arguments()
    @argument("name", help="pipeline variable (created when missing)")
    @argument("function", help="catalogue function, e.g. gaussian_blur")
    @argument("params", nargs="*", help="key=value parameters")
    @argument("--step", help="step name (default: the function name)")
    @argument("--channel", help="only this channel (name or 0-based index)")
    @argument("--vary", help="variable components, comma separated (e.g. channel)")
    @argument("--append", action="store_true", help="chain onto the step if it exists")
    @line_magic
    def openhcs_step(self, line: str) -> Any:
        """Append a step to a pipeline, or replace the step of the same name."""
        from openhcs_nb.jupyter._magic_steps import step_added

        args = parse_args(self.openhcs_step, line)
        pipeline = step_added(self.shell.user_ns, args)
        self.shell.user_ns[args.name] = pipeline
        self.pipeline_name = args.name
        return pipeline

    def _pipeline(self, name: str | None) -> Any:
        from openhcs_nb import default_pipeline
        from openhcs_nb.pipeline import Pipeline

        name = name or self.pipeline_name
        if name is None:
            return default_pipeline()
        value = self.shell.user_ns.get(name)
        if not isinstance(value, Pipeline):
            raise UsageError(f"no pipeline called {name!r} in this notebook")
        return value

    # -- running -------------------------------------------------------------------

    @magic_arguments()
    @argument(
        "options",
        nargs="*",
        help="plate=<id|path|demo> pipeline=<var|preset:NAME> "
        "viewer=inline|napari|none "
        "wells=A01:B12",
    )
    @argument("--out", default="_openhcs", help="variable that receives the execution")
    @line_magic
    def openhcs_run(self, line: str) -> Any:
        """Run a pipeline on a plate; returns at once and shows progress live."""
        args = parse_args(self.openhcs_run, line)
        opts = key_values(args.options, strings=True)
        unknown = set(opts) - {"plate", "pipeline", "viewer", "wells"}
        if unknown:
            raise UsageError(f"unknown option(s): {', '.join(sorted(unknown))}")
        conn = self._conn()
        plate = plate_ref(str(opts.get("plate", self.plate or "")))
        if not plate:
            raise UsageError("which plate? give plate=<id|path|demo>")
        viewer = _viewer(str(opts.get("viewer", "inline")))
        pipeline, sent = self._run_pipeline(conn, opts.get("pipeline"))
        info = self._plate_info(conn, plate)
        wells = well_range(str(opts["wells"]), info.wells) if "wells" in opts else None
        if not measures(pipeline):
            print(NO_MEASUREMENTS, file=sys.stderr)
        label = str(opts["pipeline"]) if sent is not pipeline else ""
        run = conn.submit(sent, plate, wells, label=label)
        self.plate, self.last_run = plate, run
        self.shell.user_ns[args.out] = run
        from openhcs_nb.jupyter.viewer import preview_fetcher

        self._show(run, info, viewer, preview_fetcher(conn, pipeline, plate))
        return None

    def _run_pipeline(self, conn: Any, name: str | None) -> tuple[Any, Any]:
        """``(Pipeline, what to submit)``: a variable's, or a preset's exact code."""
        if not (name or "").startswith("preset:"):
            pipeline = self._pipeline(name)
            return pipeline, pipeline
        from openhcs_nb.client.errors import RemoteError
        from openhcs_nb.loading import load_pipeline

        if not hasattr(conn, "preset"):
            raise UsageError("presets live on one server: %openhcs_connect to it alone")
        try:
            code = conn.preset(str(name).removeprefix("preset:").strip()).code
        except RemoteError as exc:
            raise UsageError(exc.message) from None
        return load_pipeline(code), code

    def _plate_info(self, conn: Any, plate: str) -> Any:
        from openhcs_nb.client import RemoteUnknownPlate

        try:
            return conn.plate_info(plate)
        except RemoteUnknownPlate as exc:
            # The server's message already names the plate and what to do.
            raise UsageError(exc.message) from None

    def _show(self, run: Any, info: Any, viewer: str, fetch_well: Any) -> None:
        from openhcs_nb.jupyter.run_panel import RunPanel

        display(RunPanel(run))
        if viewer == "inline":
            from openhcs_nb.jupyter.viewer import PlateViewer

            display(PlateViewer(info, fetch_well=fetch_well).follow(run))
        elif viewer == "napari":
            from openhcs_nb.jupyter.napari_view import show_napari

            try:
                show_napari(run)
            except Exception as exc:  # Qt's own failures are many and untyped
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise UsageError(
                    f"napari could not open ({first}); run {run.id} goes on: "
                    "watch it with viewer=inline or %openhcs_status"
                ) from None

    @magic_arguments()
    @argument(
        "options", nargs="*", help="well=B03 upto=2 site=0 pipeline=<var> plate=<ref>"
    )
    @argument(
        "--out",
        default="_openhcs_preview",
        help="variable that receives the preview result",
    )
    @line_magic
    def openhcs_preview(self, line: str) -> None:
        """Show one field before and after the first ``upto`` steps, from the server.

        The figure is displayed and the result goes to ``--out``; nothing is
        returned, so no repr echoes under the images.
        """
        from openhcs_nb.jupyter._magic_args import preview_figure

        args = parse_args(self.openhcs_preview, line)
        opts = key_values(args.options)
        conn = self._conn()
        plate = plate_ref(str(opts.get("plate", self.plate or "")))
        if not plate:
            raise UsageError("which plate? give plate=<id|path|demo>")
        if "well" not in opts:
            raise UsageError("which well? give well=B03")
        pipeline = self._pipeline(opts.get("pipeline"))
        upto = opts.get("upto")
        if upto is not None and not (
            isinstance(upto, int) and 0 <= upto <= len(pipeline)
        ):
            raise UsageError(f"upto must be 0..{len(pipeline)}, got {upto!r}")
        self._plate_info(conn, plate)
        result = conn.preview(
            pipeline, plate, str(opts["well"]), upto=upto, site=int(opts.get("site", 0))
        )
        self.plate = plate
        self.shell.user_ns[args.out] = result
        display(preview_figure(result))

    # -- managing runs ---------------------------------------------------------------

    @line_magic
    def openhcs_status(self, line: str) -> None:
        """List this user's executions on the server."""
        from openhcs_nb.client._html import executions_table

        display(HTML(executions_table(self._conn().executions())))

    @magic_arguments()
    @argument("execution_id", nargs="?", help="default: the last run of this notebook")
    @line_magic
    def openhcs_cancel(self, line: str) -> str:
        """Cancel an execution (queued wells are dropped, running ones stopped)."""
        args = parse_args(self.openhcs_cancel, line)
        target = args.execution_id or (self.last_run.id if self.last_run else None)
        if target is None:
            raise UsageError("nothing to cancel: give an execution id")
        return self._conn().cancel(target)

    @magic_arguments()
    @argument("execution_id", help="an id from %%openhcs_status")
    @argument("--out", default="_openhcs", help="variable that receives the execution")
    @argument("--viewer", default="inline", help="inline, napari or none")
    @line_magic
    def openhcs_attach(self, line: str) -> Any:
        """Re-attach to an execution, e.g. after a kernel restart."""
        from openhcs_nb.client import RemoteUnknownExecution

        args = parse_args(self.openhcs_attach, line)
        viewer = _viewer(args.viewer)
        conn = self._conn()
        try:
            run = conn.attach(args.execution_id)
        except RemoteUnknownExecution:
            where = getattr(conn, "addresses", None)
            place = f"any of {', '.join(where)}" if where else "this server"
            raise UsageError(f"no execution {args.execution_id!r} on {place}") from None
        self.last_run = run
        self.shell.user_ns[args.out] = run
        from openhcs_nb.jupyter.viewer import full_resolution_fetcher

        info = self._plate_info(conn, run.plate)
        self._show(run, info, viewer, full_resolution_fetcher(run))
        return None


def _viewer(name: str) -> str:
    """Check the viewer choice before anything is submitted.

    Raises
    ------
    UsageError
        An unknown viewer, or napari without a display or not installed.
    """
    if name not in {"inline", "napari", "none"}:
        raise UsageError(f"viewer must be inline, napari or none, not {name!r}")
    if name == "napari":
        from openhcs_nb.errors import NoDisplayError, OptionalDependencyError
        from openhcs_nb.jupyter.napari_view import check_napari

        try:
            check_napari()
        except (NoDisplayError, OptionalDependencyError) as exc:
            raise UsageError(f"nothing was submitted: {exc}") from None
    return name


def register(ipython: Any) -> None:
    """Register the magics on ``ipython`` (called by ``%load_ext openhcs_nb``)."""
    from openhcs_nb.jupyter._display import register_display

    ipython.register_magics(OpenHCSMagics(ipython))
    register_display(ipython)
