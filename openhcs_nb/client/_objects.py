"""One finished well's object rows, for inspecting objects in a viewer.

Bound as ``Execution.objects``: the server reads the rows the well's worker
wrote (measurements only, never pixels), so a viewer can show the row of the
object under the cursor as soon as the well is done. Units, where a column
has one, are in ``frame.attrs["units"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from openhcs_nb.protocol import unpack_array
from openhcs_nb.protocol.messages import WellObjects

if TYPE_CHECKING:
    import pandas as pd

    from openhcs_nb.client.execution import Execution


def objects_frame(reply: Any, buffers: Sequence[Any]) -> pd.DataFrame:
    """A ``WellObjectsReply`` as a DataFrame in the table's column order."""
    import pandas as pd

    numbers = {ref.name: ref for ref in reply.numbers}
    data: dict[str, Any] = {}
    for name in reply.columns:
        if name in numbers:
            data[name] = np.array(unpack_array(numbers[name], buffers))
        elif name in reply.text:
            data[name] = pd.array(reply.text[name], dtype="string")
    frame = pd.DataFrame(data, columns=[c for c in reply.columns if c in data])
    frame.attrs["units"] = dict(reply.units)
    return frame


def execution_objects(
    self: Execution,
    well: str,
    site: int = 0,
    object_set: str | None = None,
    *,
    timeout: float | None = None,
) -> pd.DataFrame:
    """The objects-table rows of a finished ``well``, field ``site``.

    One row per object (``object_set``, ``label``, ``area``, intensities…),
    of every object set or only ``object_set``; ``frame.attrs["units"]``
    maps columns to their units (``px``, ``px²``…). The job and the
    connection survive every error below.

    Raises
    ------
    RemoteUnknownWell
        The well is not one of this execution's.
    RemotePlateError
        The well is not done yet, failed, has no objects table (no measure
        step), or the field or object set does not exist.
    RemoteUnknownExecution
        The execution is not this user's.
    """
    msg = WellObjects(
        rid=0, execution_id=self.id, well=well, site=site, object_set=object_set
    )
    return self._connection._call(msg, timeout=timeout, then=objects_frame)
