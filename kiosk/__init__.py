"""The Kivy app and the composition root of the terminal (the only package that imports kivy).

The version is written once, in ``pyproject.toml``; :func:`version` reads it from the installed
package's metadata (``kiosk --version``, the maintenance screen, the agent's birth message).
"""

from __future__ import annotations

DISTRIBUTION = "station-kiosk"
"""The name ``pyproject.toml`` gives the package, under which its metadata is installed."""


def version() -> str:
    """The installed package's version; ``0+unknown`` when the source tree runs uninstalled."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> str:
    """``kiosk.__version__``, read from the metadata when asked (not at every import)."""
    if name == "__version__":
        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
