"""mkdocs hook: generate the function reference page from the live catalogue.

The page is built from ``builtin_catalogue()`` at docs build time, so the
reference can never drift from the functions the server actually offers.
"""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files


def _param_row(param: Any) -> str:
    if param.choices:
        bounds = ", ".join(repr(c) for c in param.choices)
    elif param.min is not None or param.max is not None:
        lo = "" if param.min is None else f"{param.min:g}"
        hi = "" if param.max is None else f"{param.max:g}"
        bounds = f"{lo} .. {hi}"
    else:
        bounds = ""
    default = "*required*" if param.required else f"`{param.default!r}`"
    return f"| `{param.name}` | {param.type} | {default} | {bounds} | {param.help} |"


def render_reference() -> str:
    """Markdown for every catalogue function, grouped by category."""
    from openhcs_nb.functions import builtin_catalogue

    lines = [
        "# Function reference",
        "",
        "Generated from the function catalogue when the docs are built. Each "
        "function takes a stack `(n, y, x)`; *kind* says what flows in and out "
        "(`image`, `mask` or `labels`).",
        "",
    ]
    for category, functions in builtin_catalogue().categories().items():
        lines += [f"## {category.capitalize()}", ""]
        for fn in functions:
            gpu = " (CuPy twin on GPU)" if fn.gpu_impl else ""
            lines += [
                f"### `{fn.name}`",
                "",
                f"{fn.help}",
                "",
                f"*version* {fn.version} · *kind* {fn.input} → {fn.output}"
                f" · *memory* {fn.memory_type}{gpu}",
                "",
            ]
            if fn.side_outputs:
                lines += [f"Side outputs: {', '.join(fn.side_outputs)}.", ""]
            if fn.params:
                lines += [
                    "| parameter | type | default | range | meaning |",
                    "|---|---|---|---|---|",
                    *(_param_row(p) for p in fn.params),
                    "",
                ]
    return "\n".join(lines)


def on_files(files: Files, config: Any) -> Files:
    """Add the generated ``functions.md`` to the site."""
    files.append(File.generated(config, "functions.md", content=render_reference()))
    return files
