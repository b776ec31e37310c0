"""docs/protocol.md stays in step with the code: every code and message is listed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from openhcs_nb.protocol import ERROR_CODES, ClientMessage, Event, ServerReply

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


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
