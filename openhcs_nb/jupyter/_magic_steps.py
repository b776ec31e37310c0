"""What ``%openhcs_step`` does to a pipeline, apart from the magic's plumbing.

The function named is a catalogue function, or an ``@openhcs_nb.function``
defined in the notebook (found in the user's namespace by that name). The
step of the same name is replaced (or, with ``--append``, extended by one
more call in its chain); ``--channel`` keys the call by a channel and
groups by channel; ``--vary`` sets the variable components.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from openhcs_nb.errors import PipelineError
from openhcs_nb.jupyter._magic_args import key_values


def step_added(namespace: Mapping[str, Any], args: Any) -> Any:
    """The pipeline ``args.name`` with the step the magic's ``args`` describe.

    Raises
    ------
    UsageError
        An unknown function, a name that holds something other than a
        Pipeline, or a step the pipeline model refuses (its one-line reason).
    """
    from openhcs_nb.custom import CustomFunction
    from openhcs_nb.functions import builtin_catalogue
    from openhcs_nb.pipeline import Pipeline, Step

    catalogue = dict(builtin_catalogue())
    own = namespace.get(args.function)
    if isinstance(own, CustomFunction):  # an @openhcs_nb.function of the notebook
        catalogue[args.function] = own
    if args.function not in catalogue:
        known = ", ".join(sorted(catalogue))
        raise UsageError(f"unknown function {args.function!r}; known: {known}")
    existing = namespace.get(args.name)
    if existing is not None and not isinstance(existing, Pipeline):
        raise UsageError(
            f"{args.name!r} is a {type(existing).__name__}, not a Pipeline"
        )
    pipeline = existing or Pipeline(args.name)
    call = (catalogue[args.function], key_values(args.params))
    name = args.step or args.function
    pattern: Any = call
    if args.append and name in {s.name for s in pipeline.steps}:
        chain = pipeline.step(name).chains[0][1]
        pattern = [(c.function, c.kwargs_dict()) for c in chain] + [call]
    options: dict[str, Any] = {"name": name}
    if args.channel is not None:
        key = int(args.channel) if args.channel.isdigit() else args.channel
        pattern = {key: pattern}
        options["group_by"] = "channel"
    if args.vary:
        options["variable_components"] = [v.strip() for v in args.vary.split(",")]
    try:
        return pipeline.with_step(Step(pattern, **options))
    except PipelineError as exc:
        raise UsageError(str(exc)) from None
