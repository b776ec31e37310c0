"""The function catalogue: what a pipeline may call, and with which parameters.

Every processing function is declared once as a :class:`Function`: its name,
version, memory type, typed parameters (which later drive the widgets), the kind
of value it takes and returns, and its side outputs. A :class:`Catalogue` is a
plain, immutable mapping from name to ``Function``. There is no global registry:
``openhcs_nb.functions.builtin_catalogue()`` builds the default one explicitly.

Kinds describe the value flowing through a chain: ``image`` (float or integer
intensities), ``mask`` (bool) and ``labels`` (int32, 0 = background). The
compiler uses them to check that a chain connects before any pixel is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from openhcs_nb.errors import PipelineError

Kind = Literal["image", "mask", "labels"]
ParamType = Literal["int", "float", "bool", "str", "choice"]
MemoryType = Literal["numpy", "cupy"]
Value = int | float | bool | str | None

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "str": (str,),
    "choice": (str, int),
}


@dataclass(frozen=True)
class Param:
    """One typed, bounded parameter of a catalogue function."""

    name: str
    type: ParamType
    default: Value
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Value, ...] = ()

    @property
    def required(self) -> bool:
        """A parameter with no default must be given in every call."""
        return self.default is None

    def check(self, value: object, *, step: str | None = None) -> Value:
        """Return ``value`` normalised to this parameter's type.

        Raises
        ------
        PipelineError
            The value has the wrong type, is out of range or is not a choice.
        """
        if value is None:
            raise PipelineError(
                "a value is required" if self.required else "None is not allowed",
                step=step,
                field=self.name,
            )
        allowed = _PY_TYPES[self.type]
        if isinstance(value, bool) and self.type != "bool":
            allowed = ()
        if not isinstance(value, allowed):
            raise PipelineError(
                f"expected {self.type}, got {type(value).__name__} {value!r}",
                step=step,
                field=self.name,
            )
        if self.type == "float":
            value = float(value)  # type: ignore[arg-type]
            if not math.isfinite(value):
                raise PipelineError(
                    f"must be finite, got {value!r}", step=step, field=self.name
                )
        if self.type == "choice" and value not in self.choices:
            raise PipelineError(
                f"must be one of {list(self.choices)}, got {value!r}",
                step=step,
                field=self.name,
            )
        if self.type in ("int", "float"):
            if self.min is not None and value < self.min:  # type: ignore[operator]
                raise PipelineError(
                    f"must be >= {self.min}, got {value!r}", step=step, field=self.name
                )
            if self.max is not None and value > self.max:  # type: ignore[operator]
                raise PipelineError(
                    f"must be <= {self.max}, got {value!r}", step=step, field=self.name
                )
        return value  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class Function:
    """A catalogue entry, callable like the function it wraps.

    ``impl`` is the NumPy implementation; ``gpu_impl`` names an optional CuPy
    twin as ``"module:function"``, imported only when a GPU is selected.
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
    param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_index", {p.name: p for p in self.params})

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
        """
        extra: dict[str, Any] = {}
        if self.needs_labels:
            extra["labels"] = labels
        if self.needs_context:
            extra["names"] = names
        return self.impl(
            stack, **self.resolved_kwargs(self.check_kwargs(kwargs)), **extra
        )

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
