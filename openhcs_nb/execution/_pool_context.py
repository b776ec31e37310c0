"""The multiprocessing context every worker pool uses (local runs and the server).

``forkserver``, because a Jupyter kernel and the server both run threads,
which make a plain ``fork`` unsafe; the well module is preloaded so each
worker starts warm.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import os
import tempfile

log = logging.getLogger(__name__)

#: The forkserver listens on an AF_UNIX socket at ``<temp dir>/pymp-*/listener-*``
#: (about 32 more bytes), and such paths may not exceed 107 bytes.
_LONGEST_TEMP_DIR = 72


def pool_context() -> multiprocessing.context.BaseContext:
    """A start method that is safe in threaded parents (kernels, servers).

    A temp dir too deep for the forkserver's socket (a deep ``$TMPDIR``, as
    under a CI runner or a spawner's scratch folder) would make every worker
    start fail with "AF_UNIX path too long"; this process then keeps its
    temporary files in ``/tmp`` instead, and says so.
    """
    where = tempfile.gettempdir()
    if len(where) > _LONGEST_TEMP_DIR and os.access("/tmp", os.W_OK):
        log.info("temp dir %s is too long for a worker socket; using /tmp", where)
        tempfile.tempdir = "/tmp"
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["openhcs_nb.execution.well"])
    return ctx
