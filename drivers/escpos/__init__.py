"""The ESC/POS thermal receipt printer: a driver that owns its transport, and a TCP simulator.

python-escpos (3.1) pickles its capabilities database when ``escpos.capabilities`` is first
imported, into ``$ESCPOS_CAPABILITIES_PICKLE_DIR`` or else into a new ``tempfile.mkdtemp()``
directory: every process that imported it left a directory with a 300 kB pickle in ``/tmp``,
which the kiosk's UI unit shares. And it calls ``mkdtemp()`` even when the variable is set (the
call is the default argument of ``environ.get``), leaving an empty directory. The station calls
:func:`keep_capabilities_in` with a folder under its state directory before anything imports
python-escpos; the driver's modules import it inside :func:`importing_escpos`, which uses that
folder (or the variable, when the operator set it) and lets python-escpos make no directory of
its own. Without either (tests, tools run without a configuration) python-escpos does as it does.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PICKLE_DIR_ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"
_cache_dir: Path | None = None


def keep_capabilities_in(folder: Path) -> bool:
    """Have python-escpos keep its capabilities pickle in ``folder`` (made when it is imported).

    False when it is too late (python-escpos is imported already) or the operator's
    ``ESCPOS_CAPABILITIES_PICKLE_DIR`` decides."""
    global _cache_dir
    if "escpos.capabilities" in sys.modules or os.environ.get(PICKLE_DIR_ENV):
        return False
    _cache_dir = folder
    return True


def _pickle_dir() -> Path | None:
    chosen = os.environ.get(PICKLE_DIR_ENV)
    if chosen:
        return Path(chosen)
    if _cache_dir is None:
        return None
    try:
        _cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # the state directory's own check says why; python-escpos uses /tmp
    return _cache_dir


@contextmanager
def importing_escpos() -> Iterator[None]:
    """Import python-escpos' modules inside this: warnings silenced (it imports
    pkg_resources-era modules), its capabilities pickle where :func:`keep_capabilities_in` said,
    and no directory of its own in the temporary directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = None if "escpos.capabilities" in sys.modules else _pickle_dir()
        if folder is None:
            yield
            return
        importer = threading.get_ident()
        real_mkdtemp = tempfile.mkdtemp

        def mkdtemp(*args: Any, **kwargs: Any) -> Any:
            # python-escpos' unused default; any other caller (or thread) gets a real one
            if threading.get_ident() == importer and not args and not kwargs:
                return str(folder)
            return real_mkdtemp(*args, **kwargs)

        had = os.environ.get(PICKLE_DIR_ENV)
        os.environ[PICKLE_DIR_ENV] = str(folder)
        tempfile.mkdtemp = mkdtemp  # read by `from tempfile import mkdtemp` in escpos.capabilities
        try:
            import escpos.capabilities  # noqa: F401  (the pickle is read or written here)
        finally:
            tempfile.mkdtemp = real_mkdtemp
            if had is None:
                del os.environ[PICKLE_DIR_ENV]
        yield
