"""Parameters of catalogue functions, derived from ``Annotated`` signatures.

A leaf module (the standard library, msgspec and :mod:`openhcs_nb.errors`
only), split out of :mod:`openhcs_nb.spec` so that "what a parameter is and
how a value is checked" lives apart from "what a catalogue function is".
:mod:`openhcs_nb.spec` re-exports every public name here; import from there.

An implementation declares each parameter once, as
``name: Annotated[type, Meta(...)] = default``. :func:`params_from_signature`
reads those into :class:`Param` records; the Annotated type is kept on the
record because it is what validates a value (``msgspec.convert``) and what
the JSON Schema is made from, so range, type and help cannot drift apart.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
from msgspec import Meta

from openhcs_nb.errors import PipelineError

ParamType = Literal["int", "float", "bool", "str", "choice", "labels"]
Value = int | float | bool | str | None


@dataclass(frozen=True)
class LabelsRef:
    """Marks a ``str`` parameter as the name of an earlier labels step.

    An ``optional`` reference left empty means "none" (a parent set not
    asked for) instead of "the latest labels".
    """

    optional: bool = False


#: A step name (the rule Step names follow) or ``""`` for the latest labels.
LabelsName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$|^$",
        description="name of an earlier labels step; empty means the latest labels",
        extra_json_schema={"x-openhcs-type": "labels"},
    ),
    LabelsRef(),
]

#: Like :data:`LabelsName`, but ``""`` means "no labels set".
OptionalLabelsName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$|^$",
        description="name of an earlier labels step; empty means none",
        extra_json_schema={"x-openhcs-type": "labels"},
    ),
    LabelsRef(optional=True),
]

_BASE_TYPES: dict[object, ParamType] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
}
_BOUND = re.compile(r"^Expected `[^`]+` (>=|<=|>|<) (.+)$")
_WRONG_TYPE = re.compile(r"^Expected `[^`]+`, got `[^`]+`")
_LABELS_RULE = (
    "must name a labels step (1-64 letters, digits, '_' or '-', not starting "
    "with a digit or '-') or be empty for the latest labels"
)


def _annotation_for(param: Param) -> Any:
    """The Annotated type a hand-written :class:`Param` stands for."""
    meta = Meta(description=param.help or None)
    if param.type == "int":
        low = None if param.min is None else math.ceil(param.min)
        high = None if param.max is None else math.floor(param.max)
        return Annotated[int, Meta(ge=low, le=high), meta]
    if param.type == "float":
        return Annotated[float, Meta(ge=param.min, le=param.max), meta]
    if param.type == "choice":
        bad = [
            c
            for c in param.choices
            if isinstance(c, bool) or not isinstance(c, int | str)
        ]
        if not param.choices or bad:
            raise TypeError(f"choice parameter {param.name!r} needs str or int choices")
        return Annotated[Literal[param.choices], meta]  # type: ignore[valid-type]
    if param.type == "labels":
        return Annotated[LabelsName, meta]
    base = {"bool": bool, "str": str}.get(param.type)
    if base is None:
        raise TypeError(f"parameter {param.name!r} has unknown type {param.type!r}")
    return Annotated[base, meta]


@dataclass(frozen=True)
class _MetaState:
    """The settings of one ``msgspec.Meta``, in a form pickle can carry."""

    settings: dict[str, Any]


_META_SETTINGS = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "pattern",
    "min_length",
    "max_length",
    "tz",
    "title",
    "description",
    "examples",
    "extra_json_schema",
    "extra",
)


def _split_annotation(hint: Any) -> tuple[Any, tuple[object, ...]]:
    """An annotation as its base type and picklable extras (Meta as settings)."""
    if get_origin(hint) is not Annotated:
        return hint, ()
    extras = tuple(
        _MetaState(
            {k: getattr(m, k) for k in _META_SETTINGS if getattr(m, k) is not None}
        )
        if isinstance(m, Meta)
        else m
        for m in hint.__metadata__
    )
    return hint.__origin__, extras


def _param_from_state(
    values: dict[str, Any], base: Any, extras: tuple[object, ...]
) -> Param:
    """Unpickling: the Param with its annotation rebuilt exactly."""
    metadata = tuple(
        Meta(**e.settings) if isinstance(e, _MetaState) else e for e in extras
    )
    annotation = Annotated[(base, *metadata)] if metadata else base
    return Param(**values, annotation=annotation)


@dataclass(frozen=True)
class Param:
    """One typed, bounded parameter of a catalogue function (derived form).

    ``annotation`` is the Annotated type that validates values; when a Param
    is written by hand it is built from ``type``/``min``/``max``/``choices``.
    A ``None`` default means the parameter is required.
    """

    name: str
    type: ParamType
    default: Value
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Value, ...] = ()
    annotation: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.annotation is None:
            object.__setattr__(self, "annotation", _annotation_for(self))
        if self.default is not None:
            try:
                default = self.check(self.default)
            except PipelineError as exc:
                raise TypeError(
                    f"bad default for {self.name!r}: {exc.reason}"
                ) from None
            object.__setattr__(self, "default", default)

    @property
    def optional(self) -> bool:
        """For a labels parameter: whether ``""`` means "none"."""
        extras = getattr(self.annotation, "__metadata__", ())
        return any(isinstance(e, LabelsRef) and e.optional for e in extras)

    def __reduce__(self) -> tuple[Any, ...]:
        # msgspec.Meta does not pickle: its settings travel as a plain record.
        values = dict(self.__dict__)
        base, extras = _split_annotation(values.pop("annotation"))
        return (_param_from_state, (values, base, extras))

    @property
    def required(self) -> bool:
        """A parameter with no default must be given in every call."""
        return self.default is None

    def check(self, value: object, *, step: str | None = None) -> Value:
        """Return ``value`` converted to this parameter's type.

        Conversion is ``msgspec.convert(value, annotation, strict=True)``: a
        bool is not an int, an int is accepted for a float (and becomes one),
        and non-finite floats are refused.

        Raises
        ------
        PipelineError
            The value has the wrong type, is out of range or is not a choice.
        """
        if value is None:
            reason = "a value is required" if self.required else "None is not allowed"
            raise PipelineError(reason, step=step, field=self.name)
        if (
            isinstance(value, float)
            and self.type == "float"
            and not math.isfinite(value)
        ):
            raise PipelineError(
                f"must be finite, got {value!r}", step=step, field=self.name
            )
        try:
            return msgspec.convert(value, self.annotation, strict=True)  # type: ignore[no-any-return]
        except msgspec.ValidationError as exc:
            reason = self._reason(str(exc), value)
            raise PipelineError(reason, step=step, field=self.name) from None

    def _reason(self, message: str, value: object) -> str:
        """The message of a msgspec error, reworded to name the rule and the value."""
        message = message.removesuffix(" - at `$`")
        shown = value
        if (
            self.type == "float"
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            shown = float(value)
        if bound := _BOUND.match(message):
            return f"must be {bound[1]} {bound[2]}, got {shown!r}"
        if message.startswith("Invalid enum value") or (
            self.type == "choice" and _WRONG_TYPE.match(message)
        ):
            return f"must be one of {list(self.choices)}, got {value!r}"
        if _WRONG_TYPE.match(message):
            expected = "str" if self.type == "labels" else self.type
            return f"expected {expected}, got {type(value).__name__} {value!r}"
        if "matching regex" in message:
            if self.type == "labels":
                return f"{_LABELS_RULE}, got {value!r}"
            return f"{message[0].lower()}{message[1:]}, got {value!r}"
        return f"{message[0].lower()}{message[1:]}"


def _param_type(name: str, base: Any, extras: tuple[object, ...]) -> ParamType:
    """The Param type of an annotation's base type and extra metadata."""
    if any(isinstance(extra, LabelsRef) for extra in extras):
        if base is not str:
            raise TypeError(f"labels parameter {name!r} must be a str")
        return "labels"
    if get_origin(base) is Literal:
        return "choice"
    if base in _BASE_TYPES:
        return _BASE_TYPES[base]
    raise TypeError(
        f"parameter {name!r} has type {base!r}; use int, float, bool, str, "
        "Literal[...] or LabelsName"
    )


def param_from_annotation(name: str, hint: Any, default: object) -> Param:
    """The :class:`Param` for ``name: hint = default`` in an implementation.

    ``default`` is ``inspect.Parameter.empty`` for a required parameter.

    Raises
    ------
    TypeError
        The annotation is not a supported type, uses an exclusive bound, or a
        default of None stands in for "required".
    """
    base, extras = hint, ()
    if get_origin(hint) is Annotated:
        base, extras = hint.__origin__, hint.__metadata__
    metas = [extra for extra in extras if isinstance(extra, Meta)]
    if any(m.gt is not None or m.lt is not None for m in metas):
        raise TypeError(f"parameter {name!r}: use ge/le bounds, not gt/lt")

    def last(attr: str) -> Any:
        values = [getattr(m, attr) for m in metas if getattr(m, attr) is not None]
        return values[-1] if values else None

    if default is None:
        raise TypeError(
            f"parameter {name!r}: leave out the default to make it required"
        )
    kind = _param_type(name, base, extras)
    return Param(
        name=name,
        type=kind,
        default=None if default is inspect.Parameter.empty else default,  # type: ignore[arg-type]
        help=last("description") or "",
        min=last("ge"),
        max=last("le"),
        choices=get_args(base) if kind == "choice" else (),
        annotation=hint,
    )


def params_from_signature(
    impl: Callable[..., Any], context: frozenset[str] = frozenset()
) -> tuple[Param, ...]:
    """Every parameter of ``impl`` after the stack, except the ``context`` ones.

    Raises
    ------
    TypeError
        A parameter has no annotation or an unsupported one.
    """
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    candidates = [
        p
        for p in list(inspect.signature(impl).parameters.values())[1:]
        if p.kind not in skip and p.name not in context
    ]
    if not candidates:
        return ()
    # Only the parameters' own annotations are evaluated, so a stack or return
    # type imported under TYPE_CHECKING does not break the declaration.
    raw = getattr(impl, "__annotations__", {})
    subset = types.SimpleNamespace(
        __annotations__={p.name: raw[p.name] for p in candidates if p.name in raw},
        __globals__=getattr(inspect.unwrap(impl), "__globals__", {}),
    )
    hints = typing.get_type_hints(subset, include_extras=True)
    missing = [p.name for p in candidates if p.name not in hints]
    if missing:
        raise TypeError(
            f"parameters {missing} of {impl.__qualname__} have no type annotation"
        )
    return tuple(
        param_from_annotation(p.name, hints[p.name], p.default) for p in candidates
    )
