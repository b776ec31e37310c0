"""The server's log lines: plain text for a terminal, JSON lines for collectors.

With ``[logging] format = "json"`` each record is one JSON object with
``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus the ids
a record carries as ``extra`` (``execution_id``, ``user``, ``well``, ``seq``)
so a log collector can select one run or one user without parsing text. A
traceback, if any, is in ``exc``. Use :func:`ids` to attach them; lines that
follow the ``"execution %s ..."`` convention get theirs without it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

#: Record attributes copied into a JSON line when a log call sets them.
ID_FIELDS = ("execution_id", "user", "well", "seq", "peer")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def ids(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call: the ids given, without the None ones."""
    return {k: v for k, v in values.items() if v is not None and k in ID_FIELDS}


class JsonLines(logging.Formatter):
    """One JSON object per record; never raises on an odd message."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_ids_in_message(record))
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _ids_in_message(record: logging.LogRecord) -> dict[str, Any]:
    """Ids named by the server's convention for lines about one run.

    Those messages start ``"execution %s"``, or ``"execution %s well %s"``,
    with the ids as the first arguments, so every such line is selectable by
    id without each call site repeating them as ``extra``.
    """
    msg, args = record.msg, record.args
    if not isinstance(msg, str) or not isinstance(args, tuple):
        return {}
    found: dict[str, Any] = {}
    if msg.startswith("execution %s") and args:
        found["execution_id"] = args[0]
        if msg.startswith("execution %s well %s") and len(args) > 1:
            found["well"] = args[1]
    return found


def configure_logging(fmt: str, level: str) -> None:
    """Set the root handler of the server process to ``fmt`` at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter(_TEXT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
