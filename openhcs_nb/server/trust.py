"""The server's trust policy: who may run their own functions, and how.

Pipeline code that declares own functions (``@function`` defs) is always
parsed by the safe loader, which reads their spec without running anything.
Then, in order:

1. The user (their CurveZMQ identity, :attr:`Peer.user`; or one of their
   OMERO groups) must be named under ``[trust]``; otherwise the code is
   refused with ``untrusted_code`` and nothing of it is compiled or run.
2. Every import in the custom code (top level and inside the function) must
   come from a ``[trust] modules`` package; ``typing`` and ``msgspec`` (the
   parameter spec) are always allowed.
3. The sandbox must work on this host (``bwrap`` present, namespaces on).

Only then is the code loaded again with each function armed to run in
:class:`~openhcs_nb.execution.sandbox.Sandbox` with the configured limits.
The source is compiled only inside that sandbox, never in the server's loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING

from openhcs_nb.custom import CustomFunction, ShippedSource
from openhcs_nb.errors import OpenHCSError
from openhcs_nb.execution.sandbox import Sandbox, SandboxLimits, sandbox_problem
from openhcs_nb.pipeline.loader import load_pipeline

if TYPE_CHECKING:
    from openhcs_nb.pipeline.model import Pipeline
    from openhcs_nb.server.config import TrustSection
    from openhcs_nb.spec import Catalogue

#: Imports the parameter spec itself needs; allowed whatever the policy says.
ALWAYS_ALLOWED = frozenset({"typing", "msgspec"})


class UntrustedCodeError(OpenHCSError):
    """Pipeline code with own functions was refused; nothing of it ran."""

    code = "untrusted_code"


def custom_functions(pipeline: Pipeline) -> list[CustomFunction]:
    """The pipeline's own functions, each once, in order of use."""
    found: dict[str, CustomFunction] = {}
    for step in pipeline.steps:
        for fn in step.functions():
            if isinstance(fn, CustomFunction):
                found.setdefault(fn.name, fn)
    return list(found.values())


def imported_modules(code: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in ``code``, at any depth."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


class TrustPolicy:
    """Loads pipeline code for one user under the server's ``[trust]`` section."""

    def __init__(self, section: TrustSection, *, bwrap: str = "bwrap") -> None:
        self.section = section
        self.limits = SandboxLimits(
            memory_mb=section.memory_mb,
            cpu_s=section.cpu_s,
            wall_s=section.wall_s,
            file_mb=section.file_mb,
            processes=section.processes,
        )
        self._bwrap = bwrap
        self._problem: str | bool | None = False  # False: not checked yet

    def trusts(self, user: str, groups: Iterable[str] = ()) -> bool:
        """Whether ``user`` (or one of ``groups``) may run own functions."""
        return user in self.section.users or bool(
            set(groups) & set(self.section.groups)
        )

    def load(
        self,
        code: str,
        catalogue: Catalogue,
        user: str,
        groups: Iterable[str] = (),
    ) -> Pipeline:
        """The pipeline of ``code``, its own functions armed for the sandbox.

        Raises
        ------
        PipelineCodeError
            The safe loader refused the code (as for any pipeline).
        UntrustedCodeError
            The code declares own functions and the user is not trusted, the
            functions import a module the policy does not allow, or this host
            cannot sandbox them. Nothing of the custom code was run.
        """
        pipeline = load_pipeline(code, catalogue)
        functions = custom_functions(pipeline)
        if not functions:
            return pipeline
        names = ", ".join(fn.name for fn in functions)
        if not self.trusts(user, groups):
            raise UntrustedCodeError(
                f"user {user!r} may not run own functions ({names}): the "
                "server's [trust] policy does not name this user or their "
                "groups; nothing was run"
            )
        allowed = ALWAYS_ALLOWED | set(self.section.modules)
        for fn in functions:
            for line, module in imported_modules(fn.module_code()):
                if module.split(".")[0] not in allowed:
                    raise UntrustedCodeError(
                        f"custom function {fn.name} imports {module!r} (line "
                        f"{line} of its code), which the server's [trust] "
                        f"modules do not allow (allowed: {', '.join(sorted(allowed))})"
                    )
        problem = self.problem()
        if problem is not None:
            raise UntrustedCodeError(
                f"own functions are refused: the server cannot sandbox them ({problem})"
            )
        sandbox = Sandbox(self.limits, self._bwrap)
        return load_pipeline(
            code,
            catalogue,
            impl_for=lambda module, name: ShippedSource(module, name, sandbox),
        )

    def problem(self) -> str | None:
        """Why this host cannot sandbox custom code (checked once), or None."""
        if self._problem is False:
            self._problem = sandbox_problem(self._bwrap)
        return self._problem  # type: ignore[return-value]
