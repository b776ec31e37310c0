"""Notebook front end: magics, widgets, the anywidget plate viewer, napari pop-out.

Nothing is imported here on purpose: ``import openhcs_nb`` must stay free of
IPython, ipywidgets and napari. Import the widget you need from its module:

- :mod:`openhcs_nb.jupyter.viewer` -- ``PlateViewer``, the live plate map and
  well view (anywidget; images travel as binary buffers);
- :mod:`openhcs_nb.jupyter.builder` -- ``PipelineBuilder``, pick catalogue
  functions, tune parameters with a live server-side preview, "to code";
- :mod:`openhcs_nb.jupyter.run_panel` -- ``RunPanel``, progress, cancel, errors;
- :mod:`openhcs_nb.jupyter.napari_view` -- ``show_napari``, the same stream as
  napari layers (needs a display; public as ``openhcs_nb.show_napari(run)``);
- :mod:`openhcs_nb.jupyter._display` -- ``register_display(ipython)``, which
  makes IPython show an ``Execution`` as the live run panel. The client layer
  never imports this package; ``%load_ext openhcs_nb`` and
  ``openhcs_nb.connect()`` (in a kernel with ipywidgets) register it.

Updates that arrive on client threads reach widgets only through
:mod:`openhcs_nb.jupyter._writer`, which applies them in batches on the
kernel's event loop.
"""
