"""The pipeline builder: catalogue picker, step editors, live preview, "to code".

The functions offered are the *server's* catalogue (``FunctionInfo``), so the
controls match what the server runs; the pipeline itself is built from the
*local* catalogue's Functions of the same names, so it is a real
``openhcs_nb.Pipeline`` that prints as code and loads back. A server function
missing locally is listed but cannot be added (a note says why).

New steps start valid (``_builder_defaults``), and every problem is shown as
one line naming the control to change (``_builder_checks``), checked against
the plate's channels before anything goes to the server. "to code" puts the
code in a new cell right below the builder (``_builder_code``), assigned to
the variable that holds the pipeline the builder was given.

Live preview: every change rebuilds the pipeline at once (errors show as one
line), then a :class:`~._debounce.Debouncer` waits for a pause in the changes
and runs ``connection.preview(...)`` on a background thread. Results come back
through the single writer on the kernel's loop; a result older than the
newest request is dropped.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.jupyter._builder_checks import check_steps, describe, produces_labels
from openhcs_nb.jupyter._builder_code import ToCode
from openhcs_nb.jupyter._builder_defaults import new_step
from openhcs_nb.jupyter._builder_steps import StepEditor, channel_options
from openhcs_nb.jupyter._debounce import Debouncer
from openhcs_nb.jupyter._preview_pane import PreviewPane, PreviewRequest
from openhcs_nb.jupyter._writer import DEFAULT_INTERVAL, CoalescingWriter
from openhcs_nb.pipeline.catalogue import Catalogue, Function
from openhcs_nb.pipeline.model import Pipeline, Step

_UNAVAILABLE = " (server only)"


def server_functions(catalogue: Any) -> list[Any]:
    """The catalogue as ``FunctionInfo`` records, whatever form it came in."""
    from openhcs_nb.protocol import function_to_wire

    if isinstance(catalogue, Mapping):
        return [function_to_wire(fn) for fn in catalogue.values()]
    return [
        function_to_wire(fn) if isinstance(fn, Function) else fn for fn in catalogue
    ]


class PipelineBuilder(widgets.VBox):
    """Build a pipeline from the server's catalogue and preview it on one well.

    ``catalogue`` defaults to ``connection.catalogue``, else the built-in one;
    ``pipeline`` pre-fills the editors; preview needs ``connection`` and
    ``plate``. ``variable`` is the name "to code" assigns; by default the
    variable holding ``pipeline`` in the notebook, else ``pipeline``.
    """

    def __init__(
        self,
        catalogue: Sequence[Any] | Catalogue | None = None,
        *,
        connection: Any = None,
        plate: str | None = None,
        pipeline: Pipeline | None = None,
        well: str | None = None,
        local: Mapping[str, Function] | None = None,
        debounce: float = 0.4,
        preview_size: int = 384,
        interval: float = DEFAULT_INTERVAL,
        loop: Any | None = None,
        variable: str | None = None,
        shell: Any = None,
    ) -> None:
        from openhcs_nb.functions import builtin_catalogue

        if catalogue is None:
            catalogue = connection.catalogue if connection is not None else None
        self.local = local if local is not None else builtin_catalogue()
        self.functions = server_functions(catalogue or self.local)
        self.infos = {f.name: f for f in self.functions}
        self.connection = connection
        self.plate = plate
        self.steps: list[StepEditor] = []
        self._selected: StepEditor | None = None
        self.code = ToCode(pipeline, variable, shell)
        wells, self.channels = self._plate_layout()

        self.name = widgets.Text(
            value=pipeline.name if pipeline is not None else "pipeline",
            description="pipeline",
        )
        self.name.observe(lambda _c: self._changed(None), names="value")
        self.category = widgets.Dropdown(
            options=list(dict.fromkeys(f.category for f in self.functions)),
            description="category",
        )
        self.function = widgets.Dropdown(description="function")
        self.add_step_button = widgets.Button(
            description="add step", icon="plus", button_style="primary"
        )
        self.add_step_button.on_click(lambda _b: self.add_step(self.function.value))
        self.note = widgets.HTML()
        self.category.observe(lambda _c: self._fill_functions(), names="value")
        self.function.observe(lambda _c: self._describe_pick(), names="value")
        self.steps_box = widgets.VBox()
        self.error = widgets.HTML()
        self.code_button = widgets.Button(description="to code", icon="code")
        self.code_button.on_click(lambda _b: self._code_clicked())

        self.preview = PreviewPane(well=well, wells=wells)
        self._writer: CoalescingWriter[Any] = CoalescingWriter(
            self._apply, interval=interval, loop=loop
        )
        self._debouncer = Debouncer(debounce, self._run_preview, self._writer.put)
        self._preview_size = preview_size
        self.preview.on_request(lambda: self._changed(None))

        picker = widgets.HBox([self.category, self.function, self.add_step_button])
        super().__init__(
            [
                widgets.HBox([self.name, self.code_button]),
                self.code.note,
                self.code.cell,
                picker,
                self.note,
                self.steps_box,
                self.error,
                self.preview.box,
            ]
        )
        self._fill_functions()
        if pipeline is not None:
            self._load(pipeline)

    # --- public API -------------------------------------------------------------

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline the editors describe now.

        Raises
        ------
        PipelineError
            A step, chain or parameter is invalid (the message names it).
        """
        steps = []
        for editor in self.steps:
            func, group_by = editor.pattern(self.local)
            steps.append(
                Step(
                    func=func,
                    name=editor.name.value.strip(),
                    variable_components=tuple(editor.components.value),
                    group_by=group_by,
                )
            )
        return Pipeline(self.name.value.strip(), tuple(steps))

    def to_code(self) -> str:
        """``self.pipeline.to_code()``: Python that re-creates the pipeline."""
        return self.pipeline.to_code()

    def to_code_cell(self, shell: Any = None) -> str:
        """Put the pipeline's code into a new cell below the builder; returns it.

        The code assigns ``self.code.variable``. In JupyterLab and Notebook 7 the
        cell appears at once; elsewhere it comes after the next cell runs, and
        the builder shows the code with a Copy button meanwhile.

        Raises
        ------
        PipelineError
            The pipeline is invalid (also shown in the widget).
        """
        try:
            code = self.to_code()
        except OpenHCSError as exc:
            self.error.value = _one_line(exc)
            raise
        if shell is None and self.code.shell is None:
            self.error.value = _red("not running in IPython: use builder.to_code()")
        return self.code.send(code, shell)

    def add_step(self, function: str, kwargs: Mapping[str, Any] = ()) -> StepEditor:
        """Append a step calling ``function`` (a catalogue name).

        Raises
        ------
        KeyError
            The server's catalogue has no such function.
        """
        info = self.infos[function]
        labels = [s.name.value.strip() for s in self.steps if _makes_labels(s)]
        used = [s.chains[0].key() for s in self.steps if _makes_labels(s)]
        keys = [k for _, k in channel_options(self.channels)]
        start = new_step(info, self.local, labels, used, keys)
        name = _unique(function, {s.name.value for s in self.steps})
        editor = self._new_step(name, start.variable_components)
        if start.channel is not None:
            editor.per_channel.value = True
            editor.chains[0].channel.value = start.channel
        editor.chains[0].append(info, {**start.kwargs, **dict(kwargs)})
        editor.refresh()
        self.steps.append(editor)
        self._selected = editor
        self._refresh_steps()
        self._changed(editor)
        return editor

    def move_step(self, editor: StepEditor, delta: int) -> None:
        """Move a step up (-1) or down (+1)."""
        i = self.steps.index(editor)
        j = i + delta
        if 0 <= j < len(self.steps):
            self.steps[i], self.steps[j] = self.steps[j], self.steps[i]
            self._refresh_steps()
            self._changed(editor)

    def remove_step(self, editor: StepEditor) -> None:
        """Drop a step."""
        self.steps.remove(editor)
        if self._selected is editor:
            self._selected = self.steps[-1] if self.steps else None
        self._refresh_steps()
        self._changed(None)

    def select_step(self, editor: StepEditor) -> None:
        """Preview the output of ``editor``'s step."""
        self._selected = editor
        self._changed(None)

    def refresh_preview(self) -> None:
        """Request a preview now (still debounced)."""
        self._changed(None)

    def flush(self) -> int:
        """Apply queued preview results now (scripts and tests)."""
        return self._writer.flush()

    def wait_preview(self, timeout: float | None = None) -> bool:
        """Wait until no preview is pending or running; False on timeout."""
        idle = self._debouncer.wait_idle(timeout)
        self.flush()
        return idle

    # --- internals --------------------------------------------------------------

    def _plate_layout(self) -> tuple[list[str], list[str]]:
        """The plate's wells and channel names (empty when not known)."""
        if self.connection is None or self.plate is None:
            return [], []
        try:
            info = self.connection.plate_info(self.plate)
        except OpenHCSError:
            return [], []
        return list(info.wells), list(getattr(info, "channels", ()) or ())

    def _code_clicked(self) -> None:
        """The button: like :meth:`to_code_cell`, the error already shown."""
        with contextlib.suppress(OpenHCSError):
            self.to_code_cell()

    def _fill_functions(self) -> None:
        options = [
            (f.name if f.name in self.local else f.name + _UNAVAILABLE, f.name)
            for f in self.functions
            if f.category == self.category.value
        ]
        self.function.options = options
        self._describe_pick()

    def _describe_pick(self) -> None:
        name = self.function.value
        info = self.infos.get(name) if name else None
        if info is None:
            self.note.value = ""
            self.add_step_button.disabled = True
            return
        available = name in self.local
        self.add_step_button.disabled = not available
        text = f"<i>{info.name} v{info.version}</i>: {info.help}"
        if not available:
            text += (
                f"<br><b>{info.name} is on the server but not in this "
                "openhcs-nb's catalogue</b>: update openhcs-nb to use it"
            )
        self.note.value = text

    def _picked(self) -> Any:
        name = self.function.value
        return self.infos.get(name) if name in self.local else None

    def _new_step(self, name: str, components: Sequence[str] = ("site",)) -> StepEditor:
        return StepEditor(
            name,
            variable_components=components,
            channels=self.channels,
            on_change=self._changed,
            pick=self._picked,
            move=self.move_step,
            remove=self.remove_step,
            select=self.select_step,
        )

    def _load(self, pipeline: Pipeline) -> None:
        for step in pipeline.steps:
            editor = self._new_step(step.name, step.variable_components)
            editor.load(step.chains, self.infos)
            self.steps.append(editor)
        self._selected = self.steps[-1] if self.steps else None
        self._refresh_steps()
        self._changed(None)

    def _refresh_steps(self) -> None:
        self.steps_box.children = [s.box for s in self.steps]

    def _changed(self, editor: StepEditor | None) -> None:
        """Any edit: rebuild now, show errors, preview after a pause."""
        if editor is not None:
            self._selected = editor
        channels = len(self.channels) if self.channels else None
        problem = check_steps(self.steps, channels, self.local)
        try:
            pipeline = self.pipeline
        except OpenHCSError as exc:
            problem = problem or describe(exc, self.channels)
        if problem:
            self.error.value = _red(problem)
            self._debouncer.cancel()
            return
        self.error.value = ""
        if self.connection is None or self.plate is None:
            return
        selected = self._selected
        upto = (
            self.steps.index(selected) + 1
            if selected in self.steps
            else len(self.steps)
        )
        request = self.preview.request(pipeline, upto)
        if request is not None:
            self._debouncer.request(request)

    def _run_preview(self, request: PreviewRequest) -> Any:
        """Background thread: ask the server for the preview."""
        return self.connection.preview(
            request.pipeline,
            self.plate,
            request.well,
            upto=request.upto,
            site=request.site,
            max_size=self._preview_size,
        )

    def _apply(self, items: list[tuple[int, Any]]) -> None:
        """Show the newest preview result; drop any superseded one."""
        for generation, result in items:
            if not self._debouncer.is_current(generation):
                continue
            if getattr(result, "code", None) == "compile_error":
                self.error.value = _red(describe(result, self.channels))
                self.preview.status.value = "preview waits for the error above"
            else:
                self.preview.show(result)


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def _makes_labels(editor: StepEditor) -> bool:
    calls = editor.chains[0].calls
    return bool(calls) and produces_labels(calls[-1].info)


def _red(text: str) -> str:
    return f'<span style="color:#b00">{html.escape(text)}</span>'


def _one_line(exc: BaseException) -> str:
    """A pipeline or compile error in the builder's words, red, one line."""
    return _red(describe(exc))
