"""How many bytes a folder of result stores takes (metrics, retention, status)."""

from __future__ import annotations

import os
from pathlib import Path


def folder_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (0 when it is missing)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # removed while we walked: pruned, or a temp file
    return total
