"""A plain page for the plate viewer's JS: served on loopback, open in Chromium.

The page imports the same one module anywidget gets (:func:`build_esm`); each
test module writes its own ``index.html`` and data into ``root`` first.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhcs_nb.jupyter.viewer import STATIC, build_esm

CHROMIUM = shutil.which("chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing: the test's own output is what matters."""


@contextlib.contextmanager
def open_page(
    root: Path, viewport: dict[str, int] | None = None
) -> Iterator[tuple[Any, list[str]]]:
    """Serve ``root`` with the viewer module, open index.html; yield (tab, errors)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    (root / "plate_viewer.js").write_text(build_esm())
    shutil.copy(STATIC / "plate_viewer.css", root / "plate_viewer.css")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            tab = browser.new_page(**({"viewport": viewport} if viewport else {}))
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            tab.wait_for_function("window.ready === true", timeout=20000)
            try:
                yield tab, errors
            finally:
                browser.close()
    finally:
        server.shutdown()
