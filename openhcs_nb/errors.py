"""The error tree of openhcs-nb.

Every error starts at :class:`OpenHCSError` and has a stable ``code`` that can be
sent over the wire. Local errors describe a problem found in this process;
``RemoteError`` (in :mod:`openhcs_nb.client`) wraps one reported by a server.
Messages name the cause: the step, the field, the well, the line and column.
"""

from __future__ import annotations


class OpenHCSError(Exception):
    """Base of every error raised by openhcs-nb."""

    code: str = "error"


class PipelineError(OpenHCSError, ValueError):
    """A pipeline, step or parameter is invalid; raised when it is built."""

    code = "invalid_pipeline"

    def __init__(
        self, reason: str, *, step: str | None = None, field: str | None = None
    ) -> None:
        self.reason = reason
        self.step = step
        self.field = field
        where = ", ".join(
            part
            for part in (
                f"step {step!r}" if step is not None else "",
                f"field {field!r}" if field is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)


class PipelineCodeError(OpenHCSError, ValueError):
    """Pipeline code was refused by the safe loader; carries line and column."""

    code = "bad_pipeline_code"

    def __init__(self, reason: str, line: int, col: int) -> None:
        self.reason = reason
        self.line = line
        self.col = col
        super().__init__(f"line {line}, column {col}: {reason}")


class CompileError(OpenHCSError, ValueError):
    """A valid pipeline does not fit the plate it is compiled against."""

    code = "compile_error"

    def __init__(self, reason: str, *, step: str, key: str | None = None) -> None:
        self.reason = reason
        self.step = step
        self.key = key
        where = f"step {step!r}" + (f", key {key!r}" if key is not None else "")
        super().__init__(f"{where}: {reason}")


class PlateError(OpenHCSError, LookupError):
    """A plate, well or image cannot be found or read."""

    code = "plate_error"


class UnknownPlateError(PlateError):
    """The plate reference names nothing this process can open."""

    code = "unknown_plate"


class UnknownWellError(PlateError):
    """The well is not on the plate."""

    code = "unknown_well"


class ExecutionError(OpenHCSError, RuntimeError):
    """Running a pipeline failed as a whole (not a single well)."""

    code = "execution_error"


class NoDisplayError(OpenHCSError, RuntimeError):
    """A desktop viewer (napari) was asked for on a machine without a display."""

    code = "no_display"


class OptionalDependencyError(OpenHCSError, ImportError):
    """An optional extra is needed for this feature; the message names it."""

    code = "missing_extra"

    def __init__(self, feature: str, extra: str, package: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the {package!r} package: "
            f"pip install 'openhcs-nb[{extra}]'"
        )
