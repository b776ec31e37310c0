"""Rules about the package itself: the spec matches the code, and no IO imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import get_args

from openhcs_nb.protocol import ERROR_CODES, ClientMessage, Event, ServerReply

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "protocol.md"
FORBIDDEN = {"zmq", "IPython", "ipywidgets", "omero", "asyncio", "socket"}


def _table_codes(text: str) -> set[str]:
    section = text.split("## Error codes", 1)[1]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))


def test_when_spec_lists_error_codes_then_they_are_exactly_the_codes_in_use():
    assert _table_codes(SPEC.read_text()) == set(ERROR_CODES)


def test_when_spec_is_read_then_every_message_and_event_has_a_table_row():
    text = SPEC.read_text()
    for union in (ClientMessage, ServerReply, Event):
        for cls in get_args(union):
            assert f"| `{cls.__name__}` |" in text, cls.__name__


def test_when_protocol_modules_are_parsed_then_none_imports_io_or_ui_packages():
    for path in sorted((ROOT / "openhcs_nb" / "protocol").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, (
                    f"{path.name} imports {name}"
                )
