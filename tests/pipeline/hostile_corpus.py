"""Hostile pipeline code the safe loader must refuse.

Each entry gives the code, a substring of the expected reason, and ``at``: the
text the reported line/column must point at (``None`` when the error is about
the code as a whole, e.g. a syntax error or a size limit). Functions come from
the test catalogue in ``conftest.py``.
"""

from __future__ import annotations

from typing import NamedTuple


class Hostile(NamedTuple):
    code: str
    reason: str
    at: str | None


HEAD = (
    "from openhcs_nb import Pipeline, Step\n"
    "from openhcs_nb.functions import gaussian_blur, threshold_otsu\n"
)


def in_pipeline(name: str) -> str:
    """``name`` as the pipeline's name expression (line 3)."""
    return HEAD + f"pipeline = Pipeline(name={name}, steps=[])\n"


def in_step(**fields: str) -> str:
    """A one-step pipeline whose Step takes ``fields`` as raw source (line 3)."""
    fields.setdefault("func", "gaussian_blur")
    args = ", ".join(f"{k}={v}" for k, v in fields.items())
    return HEAD + f'pipeline = Pipeline(name="p", steps=[Step({args})])\n'


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + "1" + close * depth


CORPUS: list[Hostile] = [
    # -- code execution and introspection -----------------------------------
    Hostile("__import__('os').system('x')\n", "attribute access (.system)", "__imp"),
    Hostile(HEAD + "__import__('os')\n", "dunder name '__import__'", "__import__"),
    Hostile("exec('import os')\n", "calls to 'exec' are not allowed", "exec"),
    Hostile("eval('1')\n", "calls to 'eval' are not allowed", "eval"),
    Hostile("compile('1', 'f', 'exec')\n", "calls to 'compile'", "compile"),
    Hostile(in_pipeline("open('/etc/passwd')"), "calls to 'open'", "open("),
    Hostile(
        in_pipeline("open('/etc/passwd').read()"), "attribute access (.read)", "open("
    ),
    Hostile(
        "x = getattr(getattr(Pipeline, '__init__'), '__globals__')\n",
        "calls to 'getattr'",
        "getattr(getattr",
    ),
    Hostile(
        "x = ().__class__.__bases__[0].__subclasses__()\n",
        "attribute access (.__subclasses__)",
        "().__class__",
    ),
    Hostile(in_pipeline("().__class__"), "attribute access (.__class__)", "()."),
    Hostile(in_pipeline("__builtins__"), "dunder name '__builtins__'", "__builtins__"),
    Hostile(in_pipeline("__name__"), "dunder name '__name__'", "__name__"),
    Hostile(HEAD + "print('hi')\n", "calls to 'print'", "print"),
    Hostile(HEAD + "breakpoint()\n", "calls to 'breakpoint'", "breakpoint"),
    Hostile("\uff45\uff58\uff45\uff43('x')\n", "calls to 'exec'", "\uff45\uff58"),
    Hostile(in_pipeline("{__import__('os'): 1}"), "dunder name", "__import__"),
    Hostile(
        in_step(func="gaussian_blur()"), "cannot be called here", "gaussian_blur()"
    ),
    Hostile(in_step(func="Step.__call__"), "attribute access (.__call__)", "Step.__"),
    Hostile(in_step(__class__="1"), "dunder name '__class__'", "__class__=1"),
    # -- expression kinds ---------------------------------------------------
    Hostile(in_step(func="lambda s: s"), "lambda expressions", "lambda"),
    Hostile(
        HEAD + "pipeline = Pipeline(name='p', steps=[Step(func=gaussian_blur, "
        "name=n) for n in 'ab'])\n",
        "comprehensions",
        "[Step",
    ),
    Hostile(in_pipeline("(c for c in 'ab')"), "generator expressions", "(c for"),
    Hostile(in_pipeline("{k: 1 for k in 'ab'}"), "comprehensions", "{k"),
    Hostile(in_pipeline('f"x{1}"'), "f-strings", 'f"x'),
    Hostile(in_pipeline('(n := "x")'), "assignment expressions (:=)", 'n := "x"'),
    Hostile(in_pipeline('["a"][0]'), "subscripts", '["a"][0]'),
    Hostile(in_pipeline("'abc'[::-1]"), "subscripts", "'abc'"),
    Hostile(HEAD + "pipeline = Pipeline(**{'name': 'x'})\n", "keyword unpacking", "**"),
    Hostile(HEAD + "pipeline = Pipeline(*['x', []])\n", "starred arguments", "*['x'"),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[*[]])\n",
        "starred expressions",
        "*[]",
    ),
    Hostile(in_step(func="{**{}}", group_by="'channel'"), "dict unpacking", "{}}"),
    Hostile(in_pipeline("1e308 * 10"), "operator '*'", "1e308"),
    Hostile(in_pipeline('"a" + "b"'), "operator '+'", '"a" +'),
    Hostile(in_pipeline("2 ** 1000"), "operator '**'", "2 **"),
    Hostile(in_pipeline("not True"), "operator 'not'", "not True"),
    Hostile(in_pipeline("~1"), "operator '~'", "~1"),
    Hostile(in_pipeline("--1"), "unary '-' is only allowed before a number", "--1"),
    Hostile(in_pipeline("-True"), "unary '-' is only allowed before a number", "-True"),
    Hostile(in_pipeline("'a' if 1 else 'b'"), "conditional expressions", "'a' if"),
    Hostile(in_pipeline("'a' and 'b'"), "'and' / 'or'", "'a' and"),
    Hostile(in_pipeline("1 < 2"), "comparisons", "1 < 2"),
    Hostile(in_pipeline("{1, 2}"), "set literals", "{1, 2}"),
    Hostile(in_pipeline("b'x'"), "bytes literals", "b'x'"),
    Hostile(in_pipeline("1j"), "complex numbers", "1j"),
    Hostile(in_pipeline("..."), "Ellipsis", "..."),
    Hostile(in_pipeline("9007199254740992"), "out of range", "9007"),
    Hostile(in_pipeline("-9007199254740993"), "out of range", "-9007"),
    Hostile(in_pipeline("1e999"), "not finite", "1e999"),
    Hostile(HEAD + "await x\n", "await", "await"),
    Hostile(HEAD + "yield 1\n", "yield", "yield"),
    # -- names --------------------------------------------------------------
    Hostile(
        in_step(func="os"), "name 'os' is not an imported catalogue function", "os"
    ),
    Hostile(
        in_step(func="g\u0430ussian_blur"),
        "name 'g\\u0430ussian_blur' is not an imported catalogue function",
        "g\u0430ussian",
    ),
    Hostile(
        "from openhcs_nb.functions import g\u0430ussian_blur\n",
        "'g\\u0430ussian_blur' is not in the function catalogue",
        "g\u0430ussian",
    ),
    Hostile(
        "from openhcs_nb.functions import (gaussian_blur, eval)\n",
        "'eval' is not in the function catalogue",
        "eval",
    ),
    Hostile(
        "from openhcs_nb.functions import __builtins__\n", "dunder name", "__builtins__"
    ),
    Hostile(in_step(func="Pipeline"), "is not a catalogue function", "Pipeline"),
    # -- imports ------------------------------------------------------------
    Hostile("import os\n", "'import os' is not allowed", "import os"),
    Hostile("import openhcs_nb\n", "'import openhcs_nb' is not allowed", "import"),
    Hostile("from os import system\n", "imports from 'os' are not allowed", "from os"),
    Hostile(
        "from subprocess import run\n", "imports from 'subprocess'", "from subprocess"
    ),
    Hostile(
        "from openhcs_nb.functions import gaussian_blur as g\n",
        "import aliases are not allowed",
        "gaussian_blur as g",
    ),
    Hostile(
        "from openhcs_nb import Pipeline as P\n", "import aliases", "Pipeline as P"
    ),
    Hostile("from openhcs_nb.functions import *\n", "star imports", "*"),
    Hostile("from . import functions\n", "relative imports", "from ."),
    Hostile("from .functions import gaussian_blur\n", "relative imports", "from ."),
    Hostile(
        "from openhcs_nb import load_pipeline\n",
        "cannot be imported from openhcs_nb",
        "load_pipeline",
    ),
    Hostile(
        "from openhcs_nb.pipeline import Pipeline\n",
        "imports from 'openhcs_nb.pipeline' are not allowed",
        "from",
    ),
    # -- statements ---------------------------------------------------------
    Hostile("@exec\ndef f():\n    pass\n", "decorators are not allowed", "exec"),
    Hostile("def f():\n    pass\n", "function definitions", "def f"),
    Hostile("async def f():\n    pass\n", "async function definitions", "async def"),
    Hostile("class A:\n    pass\n", "class definitions", "class A"),
    Hostile("global x\n", "'global' statements", "global"),
    Hostile("nonlocal x\n", "'nonlocal' statements", "nonlocal"),
    Hostile(
        in_pipeline("'p'") + "pipeline.steps = []\n",
        "assignment to an attribute",
        "pipeline.steps",
    ),
    Hostile(
        in_pipeline("'p'") + "pipeline = Pipeline(name='q', steps=[])\n",
        "only one pipeline assignment",
        "pipeline = Pipeline(name='q'",
    ),
    Hostile("try:\n    pass\nexcept Exception:\n    pass\n", "'try' statements", "try"),
    Hostile("while True:\n    pass\n", "'while' loops", "while"),
    Hostile("for i in []:\n    pass\n", "'for' loops", "for"),
    Hostile("if True:\n    pass\n", "'if' statements", "if"),
    Hostile("with open('x') as f:\n    pass\n", "'with' statements", "with"),
    Hostile("match x:\n    case 1:\n        pass\n", "'match' statements", "match"),
    Hostile("assert False\n", "'assert' statements", "assert"),
    Hostile("del x\n", "'del' statements", "del"),
    Hostile("raise SystemExit\n", "'raise' statements", "raise"),
    Hostile("return 1\n", "'return'", "return"),
    Hostile("pass\n", "'pass'", "pass"),
    Hostile("x = 1\nx += 1\n", "the assigned value must be a Pipeline", "1"),
    Hostile("x += 1\n", "augmented assignment", "x += 1"),
    Hostile(
        HEAD + "p: Pipeline = Pipeline(name='x', steps=[])\n",
        "annotated",
        "p: Pipeline",
    ),
    Hostile(
        HEAD + "x = y = Pipeline(name='x', steps=[])\n", "chained assignment", "x = y"
    ),
    Hostile(
        HEAD + "a, b = Pipeline(name='x', steps=[]), 1\n",
        "assignment to a tuple",
        "a, b",
    ),
    Hostile("globals()['x'] = 1\n", "assignment to a subscript", "globals()"),
    Hostile(HEAD + "pipeline = Pipeline\n", "must be a Pipeline(...) call", "Pipeline"),
    Hostile(
        HEAD + "pipeline = Step(func=gaussian_blur)\n",
        "must be a Pipeline(...) call",
        "Step(",
    ),
    Hostile(
        in_pipeline("'p'") + "pipeline.steps.append(1)\n",
        "attribute access (.append)",
        "pipeline.steps",
    ),
    Hostile(HEAD + "Pipeline(name='x', steps=[])\n", "bare expressions", "Pipeline("),
    Hostile("", "no pipeline found", None),
    Hostile(HEAD, "no pipeline found", None),
    # -- limits and the parser ------------------------------------------------
    Hostile("x = " + nested(10_000) + "\n", "too many nested parentheses", None),
    Hostile(in_pipeline(nested(30)), "nested deeper than 20 levels", "["),
    Hostile(in_pipeline(nested(25, "{'a': ", "}")), "nested deeper than 20", "'a'"),
    Hostile("x = " + "-" * 100_000 + "1\n", "nested too deeply to parse", None),
    Hostile("x = " + "1+" * 100_000 + "1\n", "nested too deeply to parse", None),
    Hostile("x = a" + ".b" * 100_000 + "\n", "nested too deeply to parse", None),
    Hostile('x = "' + "a" * 10_000_000 + '"\n', "larger than 256 KiB", None),
    Hostile(in_pipeline('"' + "a" * 5000 + '"'), "longer than 4096", '"aaa'),
    Hostile(in_pipeline("[" + "0, " * 1001 + "]"), "1001 items", "[0, "),
    Hostile(
        "x = [" + "[0, 0, 0], " * 6000 + "]\n", "more than 20000 syntax nodes", None
    ),
    Hostile("x = " + "9" * 5000 + "\n", "syntax error", None),
    Hostile("pipeline = Pipeline(\n", "syntax error", None),
    Hostile("x = 1\0\n", "syntax error", None),
    # -- calls and validation -------------------------------------------------
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[], extra=1)\n",
        "Pipeline() has no argument 'extra'",
        "extra=1",
    ),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', name='y', steps=[])\n",
        "got argument 'name' twice",
        "name='y'",
    ),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[Step(gaussian_blur, 'b')])\n",
        "takes at most 1 positional argument",
        "'b'",
    ),
    Hostile(HEAD + "pipeline = Pipeline(steps=[])\n", "needs a name", "Pipeline("),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[Step(name='s')])\n",
        "Step() needs func",
        "Step(",
    ),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[1])\n",
        "steps[0] must be a Step",
        "1]",
    ),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps='abc')\n",
        "steps must be a list",
        "'abc'",
    ),
    Hostile(in_pipeline("''"), "a pipeline needs a non-empty name", "''"),
    Hostile(
        in_step(func="(gaussian_blur, {'sigma': -1.0})", name="'blur'"),
        "step 'blur', field 'sigma': must be >= 0.0",
        "'sigma'",
    ),
    Hostile(
        in_step(func="(gaussian_blur, {'radius': 1})"),
        "unknown parameter for gaussian_blur",
        "'radius'",
    ),
    Hostile(
        in_step(func="(gaussian_blur, {'sigma': 'wide'})"),
        "expected float, got str",
        "'sigma'",
    ),
    Hostile(
        in_step(variable_components="['well']"),
        "wells are always processed one at a time",
        "['well']",
    ),
    Hostile(in_step(name="'bad name'"), "step names are 1-64", "'bad name'"),
    Hostile(in_step(func="{0: gaussian_blur}"), "a dict pattern needs group_by", "{0:"),
    Hostile(
        in_step(func="{0: gaussian_blur, 0: threshold_otsu}", group_by="'channel'"),
        "duplicate dict key 0",
        "0: threshold_otsu",
    ),
    Hostile(
        in_step(func="{1: gaussian_blur, True: threshold_otsu}", group_by="'channel'"),
        "dict keys must be str or int literals, got bool",
        "True",
    ),
    Hostile(
        HEAD + "pipeline = Pipeline(name='x', steps=[\n"
        "    Step(func=gaussian_blur, name='a'),\n"
        "    Step(func=threshold_otsu, name='a'),\n"
        "])\n",
        "step names must be unique",
        "Step(func=threshold_otsu",
    ),
    Hostile(
        HEAD
        + "pipeline = Pipeline(name='x', steps=["
        + ", ".join(f"Step(func=gaussian_blur, name='s{i}')" for i in range(201))
        + "])\n",
        "201 steps; a pipeline holds at most 200",
        "[Step",
    ),
]
