"""Editors of one step, one chain and one call, for the pipeline builder.

A step holds one chain of calls, or, "per channel", one chain per channel key
picked in a Channel dropdown (the plate's channels by index, plus any name a
loaded pipeline used). Each editor owns its
widgets and turns them back into model values; it never builds the Pipeline
itself. Every user change is reported through ``on_change(step_editor)`` so
the builder can rebuild and preview.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets

from openhcs_nb.errors import PipelineError
from openhcs_nb.jupyter._param_controls import (
    control_value,
    param_control,
    set_control,
)
from openhcs_nb.pipeline.catalogue import Function, Value
from openhcs_nb.pipeline.model import WELL_COMPONENTS, Chain

OnChange = Callable[["StepEditor"], None]
Pick = Callable[[], Any]  # the FunctionInfo chosen in the builder's picker, or None


def _button(icon: str, tooltip: str, on_click: Callable[[], None]) -> widgets.Button:
    button = widgets.Button(
        icon=icon, tooltip=tooltip, layout=widgets.Layout(width="36px")
    )
    button.on_click(lambda _b: on_click())
    return button


#: Channel choices when the plate is not known: indices only.
UNKNOWN_CHANNELS = 4


def channel_options(
    channels: Sequence[str], extra: Sequence[int | str] = ()
) -> list[tuple[str, int | str]]:
    """Dropdown choices ``(label, key)``: plate channels by index, then ``extra``."""
    options: list[tuple[str, int | str]] = [
        (f"{i}: {name}", i) for i, name in enumerate(channels)
    ] or [(f"channel {i}", i) for i in range(UNKNOWN_CHANNELS)]
    keys = {key for _, key in options}
    options += [(str(key), key) for key in extra if key not in keys]
    return options


class CallEditor:
    """One function call: its name, parameter controls, move/remove buttons."""

    def __init__(
        self, info: Any, chain: ChainEditor, kwargs: Mapping[str, Value] = ()
    ) -> None:
        self.info = info
        self.chain = chain
        self.controls = {p.name: param_control(p) for p in info.params}
        for name, value in dict(kwargs).items():
            if name in self.controls:
                set_control(self.controls[name], value)
        title = widgets.HTML(f"<b>{info.name}</b>", tooltip=info.help)
        title.layout.min_width = "160px"
        header = widgets.HBox(
            [
                title,
                _button("arrow-up", "move up", lambda: chain.move(self, -1)),
                _button("arrow-down", "move down", lambda: chain.move(self, 1)),
                _button("times", "remove this function", lambda: chain.remove(self)),
            ]
        )
        self.box = widgets.VBox(
            [header, widgets.VBox(list(self.controls.values()))],
            layout=widgets.Layout(margin="0 0 4px 12px"),
        )
        for control in self.controls.values():
            control.observe(lambda _c: chain.step.changed(), names="value")

    @property
    def name(self) -> str:
        """The catalogue name of the called function."""
        return str(self.info.name)

    def kwargs(self) -> dict[str, Value]:
        """Every parameter's current value (defaults are dropped by the model)."""
        return {
            p.name: control_value(self.controls[p.name], p) for p in self.info.params
        }


class ChainEditor:
    """The calls of one chain, and its channel key when the step is per channel."""

    def __init__(self, step: StepEditor, key: int | str = 0) -> None:
        self.step = step
        self.calls: list[CallEditor] = []
        options = channel_options(step.channels, [key])
        self.channel = widgets.Dropdown(
            options=options,
            value=key,
            description="Channel",
            tooltip="the channel this chain runs on",
            layout=widgets.Layout(width="220px"),
        )
        self.channel.observe(lambda _c: step.changed(), names="value")
        self.add_button = widgets.Button(
            description="add function",
            icon="plus",
            tooltip="append the picked function",
        )
        self.add_button.on_click(lambda _b: self._append_picked())
        self.remove_button = _button("times", "remove this channel", self._remove)
        self.calls_box = widgets.VBox()
        self.box = widgets.VBox(
            [
                widgets.HBox([self.channel, self.remove_button]),
                self.calls_box,
                self.add_button,
            ],
            layout=widgets.Layout(border="1px dashed #ccc", padding="4px"),
        )

    def key(self) -> int | str:
        """The channel key (only meaningful per channel)."""
        return self.channel.value  # type: ignore[no-any-return]

    def label(self) -> str:
        """The channel as the dropdown shows it."""
        return str(self.channel.label)

    def append(self, info: Any, kwargs: Mapping[str, Value] = ()) -> CallEditor:
        """Add a call of ``info`` at the end of the chain."""
        call = CallEditor(info, self, kwargs)
        self.calls.append(call)
        self.refresh()
        return call

    def _append_picked(self) -> None:
        info = self.step.pick()
        if info is not None:
            self.append(info)
            self.step.changed()

    def move(self, call: CallEditor, delta: int) -> None:
        """Move ``call`` up (-1) or down (+1) within the chain."""
        i = self.calls.index(call)
        j = i + delta
        if 0 <= j < len(self.calls):
            self.calls[i], self.calls[j] = self.calls[j], self.calls[i]
            self.refresh()
            self.step.changed()

    def remove(self, call: CallEditor) -> None:
        """Drop ``call`` from the chain."""
        self.calls.remove(call)
        self.refresh()
        self.step.changed()

    def _remove(self) -> None:
        self.step.remove_chain(self)

    def refresh(self) -> None:
        """Show the calls in their order and the key only when per channel."""
        self.calls_box.children = [c.box for c in self.calls]
        per_channel = self.step.per_channel.value
        self.channel.layout.display = "" if per_channel else "none"
        self.remove_button.layout.display = "" if per_channel else "none"

    def to_chain(
        self, local: Mapping[str, Function]
    ) -> list[tuple[Function, dict[str, Value]]]:
        """The chain as ``[(function, kwargs), ...]`` from the local catalogue.

        Raises
        ------
        PipelineError
            The chain is empty or calls a function the local catalogue lacks.
        """
        step = self.step.name.value.strip() or None
        if not self.calls:
            raise PipelineError(
                "add a function with the 'add function' button (or remove the "
                "step with its bin button)",
                step=step,
            )
        out = []
        for call in self.calls:
            fn = local.get(call.name)
            if fn is None:
                raise PipelineError(
                    f"{call.name} is on the server but not in the local catalogue "
                    "(openhcs_nb.functions); update openhcs-nb to use it",
                    step=step,
                    field="func",
                )
            out.append((fn, call.kwargs()))
        return out


class StepEditor:
    """One step: name, stacked components, per-channel switch and its chains."""

    def __init__(
        self,
        name: str,
        *,
        on_change: OnChange,
        pick: Pick,
        move: Callable[[StepEditor, int], None],
        remove: Callable[[StepEditor], None],
        select: Callable[[StepEditor], None],
        variable_components: Sequence[str] = ("site",),
        channels: Sequence[str] = (),
    ) -> None:
        self._on_change = on_change
        self.channels = tuple(channels)
        self.pick = pick
        self._quiet = False
        self.name = widgets.Text(
            value=name, description="step", continuous_update=False
        )
        self.components = widgets.TagsInput(
            value=list(variable_components),
            allowed_tags=list(WELL_COMPONENTS),
            allow_duplicates=False,
            tooltip="components stacked into one (n, y, x) array",
        )
        self.per_channel = widgets.Checkbox(
            value=False,
            description="per channel",
            indent=False,
            tooltip="run the chain on the channel chosen below (one chain per channel)",
        )
        self.add_chain_button = widgets.Button(
            description="add channel", icon="plus", tooltip="another channel's chain"
        )
        self.add_chain_button.on_click(lambda _b: self._add_chain())
        self.chains: list[ChainEditor] = [ChainEditor(self, 0)]
        self.chains_box = widgets.VBox()
        header = widgets.HBox(
            [
                self.name,
                _button("eye", "preview after this step", lambda: select(self)),
                _button("arrow-up", "move step up", lambda: move(self, -1)),
                _button("arrow-down", "move step down", lambda: move(self, 1)),
                _button("trash", "remove step", lambda: remove(self)),
            ]
        )
        options = widgets.HBox(
            [widgets.Label("stack"), self.components, self.per_channel]
        )
        self.box = widgets.VBox(
            [header, options, self.chains_box, self.add_chain_button],
            layout=widgets.Layout(
                border="1px solid #bbb", padding="6px", margin="4px 0"
            ),
        )
        self.name.observe(lambda _c: self.changed(), names="value")
        self.components.observe(lambda _c: self.changed(), names="value")
        self.per_channel.observe(self._per_channel_toggled, names="value")
        self.refresh()

    def changed(self) -> None:
        """Report a user change (not while the editor is being filled in)."""
        if not self._quiet:
            self._on_change(self)

    def refresh(self) -> None:
        """Show the chains (and the per-channel controls when switched on)."""
        for chain in self.chains:
            chain.refresh()
        self.chains_box.children = [c.box for c in self.chains]
        per_channel = self.per_channel.value
        self.add_chain_button.layout.display = "" if per_channel else "none"

    def _per_channel_toggled(self, _change: Any) -> None:
        if not self.per_channel.value:
            del self.chains[1:]  # back to one chain for every channel
        self.refresh()
        self.changed()

    def _add_chain(self) -> ChainEditor:
        used = {c.key() for c in self.chains}
        free = [k for _, k in channel_options(self.channels) if k not in used]
        chain = ChainEditor(self, free[0] if free else len(self.chains))
        self.chains.append(chain)
        self.refresh()
        self.changed()
        return chain

    def remove_chain(self, chain: ChainEditor) -> None:
        """Drop one channel's chain (the last one stays)."""
        if len(self.chains) > 1:
            self.chains.remove(chain)
            self.refresh()
            self.changed()

    def load(
        self,
        chains: Sequence[tuple[int | str | None, Chain]],
        infos: Mapping[str, Any],
    ) -> None:
        """Fill the editor from a Step's normalised chains, without reporting."""
        self._quiet = True
        try:
            per_channel = chains[0][0] is not None
            self.per_channel.value = per_channel
            self.chains = []
            for key, chain in chains:
                editor = ChainEditor(self, 0 if key is None else key)
                for call in chain:
                    editor.append(infos[call.name], call.kwargs_dict())
                self.chains.append(editor)
            self.refresh()
        finally:
            self._quiet = False

    def pattern(self, local: Mapping[str, Function]) -> tuple[Any, str | None]:
        """``(func, group_by)`` for ``Step(...)``.

        Raises
        ------
        PipelineError
            A chain is invalid, or two chains have the same channel key.
        """
        if not self.per_channel.value:
            return self.chains[0].to_chain(local), None
        func: dict[int | str, Any] = {}
        step = self.name.value.strip() or None
        for chain in self.chains:
            key = chain.key()
            if key in func:
                raise PipelineError(
                    f"two chains use channel {chain.label()}: choose another "
                    "channel in one of their Channel dropdowns",
                    step=step,
                    field="func",
                )
            func[key] = chain.to_chain(local)
        return func, "channel"
