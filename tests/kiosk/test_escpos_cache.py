"""python-escpos' capabilities pickle goes to the station's state directory, not to ``/tmp``.

python-escpos 3.1 pickles its capabilities database into a new ``mkdtemp()`` directory each time
it is imported, unless ``ESCPOS_CAPABILITIES_PICKLE_DIR`` is set (and even then it makes an
empty one). Each case runs the station's start-up path in a process of its own with a private
``TMPDIR``, so what python-escpos leaves behind can be seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# kiosk run's order: the configuration (state directory checked, the printer model's check may
# import python-escpos), then the station's devices (the ESC/POS driver imports it)
START_UP = """
import sys
from pathlib import Path
from kiosk.config import load_config

load_config(Path(sys.argv[1]), state_dir=True)
import kiosk.shell.devices  # noqa: the drivers the station builds
import escpos.capabilities

print(escpos.capabilities.pickle_path)
"""


def start_up(tmp_path: Path, model: str, env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Run the start-up path; the pickle's path and the private temporary directory."""
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'version = 1\n[state]\ndir = "{tmp_path / "state"}"\n'
        f'[devices]\nthermal_printer_model = "{model}"\n'
    )
    run_env = {k: v for k, v in os.environ.items() if k != "ESCPOS_CAPABILITIES_PICKLE_DIR"}
    run_env |= {"TMPDIR": str(private_tmp), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", START_UP, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=run_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]), private_tmp


@pytest.mark.parametrize("model", ["default", "TM-T20II"], ids=["at-the-driver", "at-the-config"])
def test_the_pickle_is_kept_in_the_state_directory(tmp_path: Path, model: str) -> None:
    """``TM-T20II``: the configuration's model check is the first to import python-escpos."""
    pickle, private_tmp = start_up(tmp_path, model)
    assert pickle.parent == tmp_path / "state" / "escpos-cache"
    assert pickle.is_file()
    assert list(private_tmp.iterdir()) == []  # not even the empty directory of mkdtemp()


def test_the_operators_variable_decides(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    pickle, private_tmp = start_up(
        tmp_path, "default", {"ESCPOS_CAPABILITIES_PICKLE_DIR": str(chosen)}
    )
    assert pickle.parent == chosen and pickle.is_file()
    assert list(private_tmp.iterdir()) == []
    assert not (tmp_path / "state" / "escpos-cache").exists()
