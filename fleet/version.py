"""The version of the installed software, from one source: the distribution's metadata.

``pyproject.toml``'s ``[project] version`` is the only place the number is written; installing
(``pip install``, also ``-e``) puts it in the distribution's metadata, and
:func:`importlib.metadata.version` reads it from there. A source tree that was never installed
(``PYTHONPATH=.``) has no metadata: then the ``pyproject.toml`` beside the package is read.
"""

from __future__ import annotations

from pathlib import Path

DISTRIBUTION = "station-kiosk"  # pyproject.toml's [project] name
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    try:
        import tomllib

        with PYPROJECT.open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown"
