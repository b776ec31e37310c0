"""OMERO integration: joining users' sessions, and writing results back.

Nothing here imports omero-py at import time; every module does so inside the
functions that talk to a server, so ``import openhcs_nb.omero`` works without
the ``omero`` extra. The plate source lives in :mod:`openhcs_nb.plates.omero`.

- :mod:`~openhcs_nb.omero.session`: session keys, joining, keepalive, a pool.
- :mod:`~openhcs_nb.omero.gateway`: the exact connection calls we make.
- :mod:`~openhcs_nb.omero.writeback`: results to OMERO.tables, ROIs, provenance.
"""
