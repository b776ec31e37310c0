"""Browser-test fixtures: ``lab`` (a real JupyterLab) and ``page`` (a Chromium tab)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab import lab, page  # noqa: F401
from notebook7 import notebook7  # noqa: F401
