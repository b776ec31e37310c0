"""The function spec: what a catalogue function is and how it takes parameters.

This is a leaf module (the standard library, msgspec, :mod:`openhcs_nb.errors`
and its parameter half :mod:`openhcs_nb._spec_params` only) so that
``functions/``, which declares the built-ins, and ``pipeline/``, which builds
and loads pipelines, can share it without importing each other.

Each parameter is declared once, in the implementation's signature::

    def _gaussian_blur(
        stack: np.ndarray,
        *,
        sigma: Annotated[float, Meta(ge=0, le=20, description="...")] = 2.0,
    ) -> np.ndarray: ...

:class:`Function` reads the signature (``inspect.signature`` plus
``typing.get_type_hints(include_extras=True)``) into :class:`Param` records,
the introspectable form the compiler, the wire and the widgets use. The
Annotated type is also what validates a value (``msgspec.convert``) and what
:meth:`Function.schema` turns into JSON Schema, so range, type and help cannot
drift apart. Choices are ``Literal[...]`` types; a parameter without a default
is required; :data:`LabelsName` names an earlier labels step.

Kinds describe the value flowing through a chain: ``image`` (float or integer
intensities), ``mask`` (bool) and ``labels`` (int32, 0 = background). The
compiler uses them to check that a chain connects before any pixel is read.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from openhcs_nb._spec_params import (
    LabelsName,
    LabelsRef,
    OptionalLabelsName,
    Param,
    ParamType,
    Value,
    param_from_annotation,
    params_from_signature,
)
from openhcs_nb.errors import PipelineError

Kind = Literal["image", "mask", "labels"]
MemoryType = Literal["numpy", "cupy"]

__all__ = [
    "Catalogue",
    "Function",
    "Kind",
    "LabelsName",
    "LabelsRef",
    "MemoryType",
    "OptionalLabelsName",
    "Param",
    "ParamType",
    "Value",
    "param_from_annotation",
    "params_from_signature",
]


def _module_function(module: str, name: str) -> Function:
    """Unpickling a Function sent by name: import its module and look it up."""
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class Function:
    """A catalogue entry, callable like the function it wraps.

    ``impl`` is the NumPy implementation; ``gpu_impl`` names an optional CuPy
    twin as ``"module:function"``, imported only when a GPU is selected.
    ``params`` is derived from ``impl``'s signature unless given by hand.
    Equality and hashing go by name and version, so pipelines compare by value.
    """

    name: str
    version: str
    impl: Callable[..., Any]
    help: str
    category: str
    input: Kind = "image"
    output: Kind = "image"
    params: tuple[Param, ...] = ()
    side_outputs: tuple[str, ...] = ()
    needs_labels: bool = False
    needs_context: bool = False
    memory_type: MemoryType = "numpy"
    gpu_impl: str | None = None
    # "illumination": the plan fits a flat field over the plate first and the
    # runner passes it as ``illumination=`` (see execution/plate_phase.py).
    plate_phase: str | None = None
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)
    derived: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        derived = not self.params
        if derived:
            context = frozenset(
                (("labels",) if self.needs_labels else ())
                + (("names",) if self.needs_context else ())
                + (("illumination",) if self.plate_phase else ())
            )
            object.__setattr__(
                self, "params", params_from_signature(self.impl, context)
            )
        object.__setattr__(self, "derived", derived)
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

    def __reduce_ex__(self, protocol: Any) -> Any:
        # A Function bound at module level next to its impl (every built-in)
        # travels by name, so a worker gets its own copy without re-building
        # the annotations; any other travels by value.
        module = sys.modules.get(getattr(self.impl, "__module__", None) or "")
        if module is not None and getattr(module, self.name, None) is self:
            return (_module_function, (module.__name__, self.name))
        return super().__reduce_ex__(protocol)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Function):
            return NotImplemented
        return (self.name, self.version) == (other.name, other.version)

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    def __repr__(self) -> str:
        return f"<openhcs function {self.name} v{self.version}>"

    def __call__(
        self,
        stack: Any,
        *,
        labels: Any = None,
        names: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Run the NumPy implementation on ``stack`` with checked parameters.

        ``labels`` (a 2-D label image) and ``names`` (one per plane) are passed
        on to functions that declare ``needs_labels`` / ``needs_context``, as the
        runner does.

        Raises
        ------
        PipelineError
            A parameter is invalid, or a required one is missing.
        """
        # A direct call passes labels sets as arrays (a pipeline passes names
        # and the runner swaps them for the planes): arrays skip the check.
        planes = {
            name: value
            for name, value in kwargs.items()
            if name in self.param_index
            and self.param_index[name].type == "labels"
            and not isinstance(value, str)
        }
        checked = self.check_kwargs(
            {k: v for k, v in kwargs.items() if k not in planes}
        )
        for param in self.params:
            if param.required and param.name not in checked:
                raise PipelineError(
                    f"{self.name} needs a value for this parameter", field=param.name
                )
        extra: dict[str, Any] = dict(planes)
        if self.needs_labels:
            extra["labels"] = labels
        if self.needs_context:
            extra["names"] = names
        resolved = {
            k: v for k, v in self.resolved_kwargs(checked).items() if k not in planes
        }
        return self.impl(stack, **resolved, **extra)

    def check_kwargs(
        self, kwargs: Mapping[str, object], *, step: str | None = None
    ) -> dict[str, Value]:
        """Validate ``kwargs`` and return them normalised, in declaration order.

        Only values that differ from the default are kept, so two spellings of
        the same call compare equal and generate the same code.

        Raises
        ------
        PipelineError
            A parameter is unknown, has the wrong type or is out of range.
        """
        for key in kwargs:
            if key not in self.param_index:
                known = ", ".join(self.param_index) or "none"
                raise PipelineError(
                    f"unknown parameter for {self.name} (known: {known})",
                    step=step,
                    field=key,
                )
        out: dict[str, Value] = {}
        for param in self.params:
            if param.name in kwargs:
                value = param.check(kwargs[param.name], step=step)
                if value != param.default or type(value) is not type(param.default):
                    out[param.name] = value
        return out

    def resolved_kwargs(self, kwargs: Mapping[str, Value]) -> dict[str, Value]:
        """Every parameter with its value: the given one or the default."""
        return {p.name: kwargs.get(p.name, p.default) for p in self.params}

    def schema(self) -> dict[str, Any]:
        """JSON Schema of the keyword arguments, from the same Annotated types."""
        properties: dict[str, Any] = {}
        for param in self.params:
            prop = msgspec.json.schema(param.annotation)
            if not param.required:
                prop["default"] = param.default
            properties[param.name] = prop
        return {
            "title": self.name,
            "description": self.help,
            "type": "object",
            "properties": properties,
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }


class Catalogue(Mapping[str, Function]):
    """An immutable name -> :class:`Function` mapping, built explicitly."""

    def __init__(self, functions: list[Function] | tuple[Function, ...]) -> None:
        index: dict[str, Function] = {}
        for fn in functions:
            if fn.name in index:
                raise ValueError(f"duplicate catalogue function {fn.name!r}")
            index[fn.name] = fn
        self._index = index

    def __getitem__(self, name: str) -> Function:
        return self._index[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"<Catalogue of {len(self)} functions>"

    def categories(self) -> dict[str, list[Function]]:
        """Functions grouped by category, in declaration order."""
        groups: dict[str, list[Function]] = {}
        for fn in self._index.values():
            groups.setdefault(fn.category, []).append(fn)
        return groups
