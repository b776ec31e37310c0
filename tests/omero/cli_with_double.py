"""``openhcs-server`` with the OMERO test double injected: tests only.

Run as ``python -m cli_with_double <serve|writeback> ... --omero-double <json>``
with this folder on ``PYTHONPATH`` (see :data:`ENV`). It calls the real
:func:`openhcs_nb.server.cli.main` with ``omero_gateway=DoubleFactory(json)``,
the parameter production leaves at None; the shipped daemon has no way to
load a double from its configuration. ``PYTHONPATH`` also lets the server's
forkserver workers unpickle the factory that plate handles carry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLAG = "--omero-double"
#: the environment a process needs to import this module and the double
ENV = {
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(HERE), os.environ.get("PYTHONPATH")])
    )
}


def split_double(argv: list[str]) -> tuple[Path, list[str]]:
    """``(description, the other args)``; the flag may stand anywhere."""
    if FLAG not in argv:
        raise SystemExit(f"cli_with_double: {FLAG} <double.json> is required")
    at = argv.index(FLAG)
    return Path(argv[at + 1]), argv[:at] + argv[at + 2 :]


def main(argv: list[str]) -> int:
    """Run the server CLI on the double described by ``--omero-double``."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from omero_double import DoubleFactory

    from openhcs_nb.server.cli import main as cli_main

    description, rest = split_double(argv)
    return cli_main(rest, omero_gateway=DoubleFactory(description))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
