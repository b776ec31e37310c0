"""How an :class:`~openhcs_nb.client.Execution` shows in a notebook.

The client never imports the notebook layer, so it cannot return a widget
itself: it only has a static ``_repr_html_`` snapshot. This module fills the
hook from the notebook side, through IPython's own type registry
(``display_formatter.ipython_display_formatter.for_type``): once registered,
displaying an execution shows the live :class:`~.run_panel.RunPanel`.

``%load_ext openhcs_nb`` registers it, and so does ``openhcs_nb.connect()``
when it runs inside a kernel that has ipywidgets. Registering twice is
harmless (the registry holds one function per type).
"""

from __future__ import annotations

from typing import Any

from openhcs_nb.client.execution import Execution


def show_execution(execution: Execution) -> None:
    """Display ``execution`` as a live run panel, or its snapshot without widgets.

    The panel follows the client's stream through a single writer on the
    kernel's event loop, so displaying a run never blocks the kernel.
    """
    from IPython.display import HTML, display

    try:
        from openhcs_nb.jupyter.run_panel import RunPanel
    except ImportError:  # no ipywidgets: the static snapshot will do
        display(HTML(execution._repr_html_()))
        return
    display(RunPanel(execution))


def register_display(ipython: Any) -> None:
    """Show every :class:`Execution` displayed in ``ipython`` as a run panel."""
    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.for_type(Execution, show_execution)
