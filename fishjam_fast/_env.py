"""Environment switches read at import time (kept apart so every selector can read them
without importing another selector)."""

from __future__ import annotations

import os

NO_EXTENSIONS = os.environ.get("FISHJAM_FAST_NO_EXTENSIONS", "").strip().lower() in {
    "1",
    "true",
    "yes",
    "on",
}
"""``FISHJAM_FAST_NO_EXTENSIONS=1``: use the pure-Python codec and NumPy kernels."""
