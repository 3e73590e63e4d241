"""The optional dependencies (extras) of the commands and the plugin: what each needs,
whether it is there, and the command that installs it. Imports nothing optional."""

from __future__ import annotations

import importlib

EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    # command: (extra, modules it needs)
    "demo": ("demo", ("aiohttp",)),
    "local": ("local", ("aiohttp",)),
    "serve": ("server", ("aiohttp", "prometheus_client")),
}
"""What each command needs. The demo also uses the plain SDK (to compare) and matplotlib
(for ``--chart``) when they are there, and says what to install when they are not."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'fishjam-fast[{extra}]'"


def missing_modules(names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` cannot be imported here."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing
