"""Hypothesis strategies for valid pipelines over any catalogue."""

from __future__ import annotations

import math

from hypothesis import strategies as st

from openhcs_nb.pipeline import Catalogue, Function, Param, Pipeline, Step

COMPONENTS = ("site", "channel", "z", "t")
STEP_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}", fullmatch=True)
# Text that exercises quoting and escaping: quotes, backslashes, control
# characters, accents, CJK (two columns wide), combining marks and emoji.
TRICKY_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\"'\\\n\t\r\x00 {}[](),:=#abcXYZ_-0123456789")),
        st.sampled_from(
            list("éüñßµΩжאب核細胞\u0301\u200b\u3000\U0001f52c\u2630\uff21")
        ),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
)


def param_values(param: Param) -> st.SearchStrategy[object]:
    if param.type == "bool":
        return st.booleans()
    if param.type == "choice":
        return st.sampled_from(param.choices)
    if param.type == "str":
        return TRICKY_TEXT
    low = -1e6 if param.min is None else param.min
    high = 1e6 if param.max is None else param.max
    if param.type == "int":
        return st.integers(math.ceil(low), math.floor(high))
    return st.one_of(
        st.floats(low, high, allow_nan=False, allow_infinity=False),
        st.sampled_from([low, high, 2.0, 1e-7, 1234567.0, 0.1]).filter(
            lambda v: low <= v <= high
        ),
    )


@st.composite
def calls(draw: st.DrawFn, catalogue: Catalogue) -> object:
    fn: Function = draw(st.sampled_from(list(catalogue.values())))
    kwargs = {}
    for param in fn.params:
        if param.required or draw(st.booleans()):
            kwargs[param.name] = draw(param_values(param))
    return (fn, kwargs) if kwargs or draw(st.booleans()) else fn


def chains(catalogue: Catalogue) -> st.SearchStrategy[object]:
    return st.one_of(
        calls(catalogue), st.lists(calls(catalogue), min_size=1, max_size=4)
    )


@st.composite
def steps(draw: st.DrawFn, catalogue: Catalogue, name: str) -> Step:
    variable = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, unique=True))
    if draw(st.booleans()):
        return Step(
            func=draw(chains(catalogue)),
            name=name,
            variable_components=variable,
            group_by=draw(st.sampled_from((None, *COMPONENTS))),
        )
    group_by = draw(
        st.sampled_from([c for c in COMPONENTS if c not in variable] or ["x"])
    )
    if group_by == "x":
        variable, group_by = ["site"], "channel"
    keys = draw(
        st.lists(
            st.one_of(st.integers(0, 400), TRICKY_TEXT),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    pattern = {key: draw(chains(catalogue)) for key in keys}
    return Step(
        func=pattern, name=name, variable_components=variable, group_by=group_by
    )


@st.composite
def pipelines(draw: st.DrawFn, catalogue: Catalogue, max_steps: int = 5) -> Pipeline:
    names = draw(st.lists(STEP_NAMES, max_size=max_steps, unique=True))
    name = draw(TRICKY_TEXT.filter(str.strip))
    return Pipeline(name, tuple(draw(steps(catalogue, n)) for n in names))
