"""OMERO.web's Django app served on 127.0.0.1 (port 0) in a thread, for Chromium.

The same WSGI application ``omeroweb.wsgi`` builds, wrapped in Django's
``StaticFilesHandler`` (as ``LiveServerTestCase`` does) so the app's static
files are served too. It runs in the test process, so the test's
``login_required`` hooks (``web_double.logged_in``) apply.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Threaded(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_args: object) -> None:
        """No line per request."""


@contextlib.contextmanager
def live_server() -> Iterator[str]:
    """Serve the configured Django app; yields its base URL."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.wsgi import get_wsgi_application

    app = StaticFilesHandler(get_wsgi_application())
    server = make_server(
        "127.0.0.1", 0, app, server_class=_Threaded, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
