"""Kivy is configured before it starts: one input provider, no cursor and no Escape on a kiosk.

Runs in a subprocess: Kivy's configuration is process-wide.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import parse_config

PROBE = """
import json, sys
from pathlib import Path
from kiosk.ui.app import configure_kivy
from kiosk.config import parse_config
config = parse_config(json.loads(sys.argv[1]), source="test")
configure_kivy(config, Path(sys.argv[2]))
from kivy.config import Config
print(json.dumps({
    "input": dict(Config.items("input")),
    "show_cursor": Config.get("graphics", "show_cursor"),
    "exit_on_escape": Config.get("kivy", "exit_on_escape"),
    "fullscreen": Config.get("graphics", "fullscreen"),
}))
"""


def kivy_settings(tmp_path: Path, ui: dict[str, object]) -> dict[str, object]:
    data = {"ui": ui}
    parse_config(data, source="test")  # the same validation the station does
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(data), str(tmp_path / "kivy")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_station_in_fullscreen_hides_the_cursor_and_ignores_escape(tmp_path: Path) -> None:
    settings = kivy_settings(tmp_path, {"fullscreen": True})
    assert settings["show_cursor"] == "0"
    assert settings["exit_on_escape"] == "0"
    assert settings["fullscreen"] == "auto"
    assert settings["input"] == {"mouse": "mouse,disable_multitouch"}


def test_a_touch_device_replaces_the_mouse_provider(tmp_path: Path) -> None:
    settings = kivy_settings(tmp_path, {"touch_input": "mtdev:/dev/input/event5"})
    assert settings["input"] == {"touchscreen": "mtdev,/dev/input/event5"}


def test_an_unknown_touch_input_is_refused() -> None:
    from flows.errors import ConfigError

    with pytest.raises(ConfigError, match="touch_input"):
        parse_config({"ui": {"touch_input": "mouse,mtdev"}}, source="kiosk.toml")
