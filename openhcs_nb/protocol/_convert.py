"""Turning core objects into wire records: catalogue, plate layout, errors.

The conversions read attributes only, so this module imports no core module at
run time; the core types appear under ``TYPE_CHECKING`` for the signatures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from openhcs_nb.errors import OpenHCSError
from openhcs_nb.protocol.errors import ERROR_CODES, ProtocolError, VersionMismatch
from openhcs_nb.protocol.messages import ErrorReply
from openhcs_nb.protocol.records import FunctionInfo, ParamInfo, PlateInfoWire

if TYPE_CHECKING:
    from openhcs_nb.plates.model import PlateLayout
    from openhcs_nb.spec import Function, Param


def param_to_wire(param: Param) -> ParamInfo:
    """One catalogue parameter as the client's widgets need it."""
    return ParamInfo(
        name=param.name,
        type=param.type,
        default=param.default,
        help=param.help,
        min=param.min,
        max=param.max,
        choices=list(param.choices),
        required=param.required,
    )


def function_to_wire(fn: Function) -> FunctionInfo:
    """One catalogue function, without its implementation."""
    return FunctionInfo(
        name=fn.name,
        version=fn.version,
        category=fn.category,
        help=fn.help,
        input=fn.input,
        output=fn.output,
        memory_type=fn.memory_type,
        params=[param_to_wire(p) for p in fn.params],
        side_outputs=list(fn.side_outputs),
        needs_labels=fn.needs_labels,
        has_gpu=fn.gpu_impl is not None,
        params_schema=fn.schema(),
    )


def catalogue_to_wire(
    catalogue: Mapping[str, Function] | Iterable[Function],
) -> list[FunctionInfo]:
    """The catalogue as HelloReply carries it, in declaration order."""
    functions = catalogue.values() if isinstance(catalogue, Mapping) else catalogue
    return [function_to_wire(fn) for fn in functions]


def plate_info_to_wire(layout: PlateLayout) -> PlateInfoWire:
    """A plate layout as PlateInfoReply carries it."""
    return PlateInfoWire(
        name=layout.name,
        wells=list(layout.wells),
        rows=list(layout.rows),
        columns=list(layout.columns),
        fields=layout.fields,
        channels=list(layout.channels),
        z=layout.z,
        t=layout.t,
        dtype=layout.dtype,
        shape=list(layout.shape),
    )


#: Attributes of core errors that become ErrorReply details, by name.
_DETAIL_ATTRS = ("line", "col", "step", "field", "key", "well", "retry_after")


def error_reply(
    error: BaseException, rid: int | None = None, *, traceback: str | None = None
) -> ErrorReply:
    """The ErrorReply for ``error``: its code, message and located details.

    An OpenHCSError keeps its code when ``ERROR_CODES`` has it (and its
    ``line``/``col``, ``step``/``field``/``key`` go to ``details``); any other
    exception becomes ``internal``, and its original code goes to
    ``details["error"]``. A ProtocolError's own ``rid`` wins when ``rid`` is None.
    """
    code = getattr(error, "code", None) if isinstance(error, OpenHCSError) else None
    details: dict[str, str | int | None] = {}
    for attr in _DETAIL_ATTRS:
        value = getattr(error, attr, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            details[attr] = value
    if isinstance(error, VersionMismatch):
        details["remote_version"] = error.remote_version
        details["local_version"] = error.local_version
    if code not in ERROR_CODES:
        details["error"] = code if code is not None else type(error).__name__
        code = "internal"
    if rid is None and isinstance(error, ProtocolError):
        rid = error.rid
    return ErrorReply(
        rid=rid,
        code=code,
        message=str(error) or type(error).__name__,
        remote_traceback=traceback,
        details=details,
    )
