"""The ``local_fishjam`` fixture; it lives in :mod:`fishjam_fast.pytest_plugin`.

The ``pytest11`` entry point names that module, outside this package, so that loading
the plugin does not import the server (and aiohttp). This name stays for
``pytest_plugins = ["fishjam_fast.local.pytest_plugin"]``.
"""

from __future__ import annotations

from ..pytest_plugin import local_fishjam

__all__ = ["local_fishjam"]
