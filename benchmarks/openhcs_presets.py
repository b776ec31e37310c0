"""Feed every pipeline script shipped in the OpenHCS wheel to our compat loader.

Run ``python benchmarks/openhcs_presets.py`` to print how many of OpenHCS
0.8.6's own presets load through :func:`openhcs_nb.pipeline.load_openhcs_script`
and, for each that does not, the one-line reason. The wheel is read as a zip
(nothing is installed or unpacked); it is found in the wheel cache
(``$OPENHCS_NB_CACHE/wheels`` or ``~/.cache/openhcs-nb/wheels``) or fetched
there with ``pip download --no-deps``.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from openhcs_nb.errors import PipelineCodeError
from openhcs_nb.functions import builtin_catalogue
from openhcs_nb.pipeline import Catalogue, load_openhcs_script
from openhcs_nb.pipeline._openhcs_names import COUNTERPARTS, resolve

VERSION = "0.8.6"
WHEEL = f"openhcs-{VERSION}-py3-none-any.whl"
# The scripts the wheel ships as pipelines: editor presets and demo scripts.
PRESET_PATTERN = re.compile(
    r"^(openhcs/processing/presets/pipelines/[^/]+"
    r"|openhcs/demo/[^/]*pipeline[^/]*"
    r"|benchmark/pipelines/(?!__init__|registry)[^/]+)\.py$"
)


@dataclass(frozen=True)
class PresetResult:
    """One preset's outcome: loaded (``steps`` > 0) or the refusal reason."""

    path: str
    steps: int
    reason: str = ""

    @property
    def loaded(self) -> bool:
        """Whether our loader accepted the script."""
        return not self.reason


def cache_dir() -> Path:
    """Where downloaded wheels are kept (shared with the peer benchmark)."""
    root = os.environ.get("OPENHCS_NB_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "openhcs-nb"
    return base / "wheels"


def find_wheel(*, download: bool = True) -> Path | None:
    """The cached OpenHCS wheel, fetching it when pip can reach a registry."""
    path = cache_dir() / WHEEL
    if path.is_file() or not download:
        return path if path.is_file() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q"]
    command += ["--retries", "0", "--timeout", "10"]
    command += ["-d", str(path.parent), f"openhcs=={VERSION}"]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=40)
    except (subprocess.SubprocessError, OSError):
        return None
    return path if path.is_file() else None


def preset_sources(wheel: Path) -> dict[str, str]:
    """``{path in wheel: source}`` for every shipped pipeline script, sorted."""
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if PRESET_PATTERN.match(n))
        return {name: archive.read(name).decode("utf-8") for name in names}


def load_presets(
    sources: dict[str, str], catalogue: Catalogue | None = None
) -> list[PresetResult]:
    """Load each script; a refusal is data (first line of its reason)."""
    catalogue = builtin_catalogue() if catalogue is None else catalogue
    results = []
    for path, code in sources.items():
        name = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)
        try:
            pipeline = load_openhcs_script(code, catalogue, name=f"p_{name}"[:64])
        except PipelineCodeError as exc:
            where = f"line {exc.line}: " if exc.line else ""
            reason = where + exc.reason.splitlines()[0]
            results.append(PresetResult(path, 0, reason))
        else:
            results.append(PresetResult(path, len(pipeline.steps)))
    return results


def report(results: list[PresetResult]) -> str:
    """The table the benchmark prints and docs/benchmarks.md quotes."""
    loaded = sum(r.loaded for r in results)
    lines = [f"{loaded}/{len(results)} OpenHCS {VERSION} pipeline scripts load"]
    for r in results:
        status = f"ok ({r.steps} steps)" if r.loaded else f"refused: {r.reason}"
        lines.append(f"  {r.path}: {status}")
    return "\n".join(lines)


def imported_functions(code: str) -> list[str]:
    """OpenHCS function names a script imports (read with ast, never run)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if module.startswith(("openhcs.processing.", "openhcs.pyclesperanto")):
            names += [a.name for a in node.names if a.name[:1].islower()]  # type: ignore[union-attr]
    return names


def function_report(sources: dict[str, str], catalogue: Catalogue | None = None) -> str:
    """Every OpenHCS function the presets import: mapped, pending, or none."""
    catalogue = builtin_catalogue() if catalogue is None else catalogue
    names = sorted({n for code in sources.values() for n in imported_functions(code)})
    mapped, pending, missing = [], [], []
    for name in names:
        found = resolve(name, catalogue)
        if not isinstance(found, str):
            mapped.append(f"{name}->{found.function.name}")
        elif name in COUNTERPARTS:
            pending.append(f"{name}->{COUNTERPARTS[name].target}")
        else:
            missing.append(name)
    return "\n".join(
        [
            f"functions imported by the presets: {len(names)}",
            f"  mapped ({len(mapped)}): {', '.join(mapped)}",
            f"  target not in catalogue yet ({len(pending)}): {', '.join(pending)}",
            f"  no counterpart ({len(missing)}): {', '.join(missing)}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Print the preset report; exit 2 when the wheel cannot be had."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="an openhcs wheel to read")
    args = parser.parse_args(argv)
    wheel = args.wheel or find_wheel()
    if wheel is None:
        print(f"openhcs {VERSION} wheel not cached and pip could not fetch it")
        return 2
    sources = preset_sources(wheel)
    print(report(load_presets(sources)))
    print(function_report(sources))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
