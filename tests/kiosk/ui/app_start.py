"""How every test app (``*_app.py``) starts the real kiosk: the station of its ``kiosk.toml``
with strict translations (a missing one fails the test), its log in its state folder, and Kivy
configured as on a station."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kiosk.config import load_config
from kiosk.station import create_station, setup_logging
from kiosk.ui.app import configure_kivy


def kiosk_station(config_path: str, *, wire_log: bool = True, uncapped: bool = False) -> Any:
    """The :class:`kiosk.station.Station`, before its app is built.

    ``wire_log``: the devices' wire lines in the log too (DEBUG). ``uncapped``: no frame-rate
    cap, for walks that step every frame and draw only what they photograph (60 frames a second
    would be most of their time spent sleeping); their waits are polled against the clock."""
    config = load_config(Path(config_path))
    if wire_log:
        setup_logging(config.state_dir, level=logging.DEBUG)
    else:
        setup_logging(config.state_dir)
    configure_kivy(config, config.state_dir / "kivy")
    if uncapped:
        from kivy.config import Config as KivyConfig

        KivyConfig.set("graphics", "maxfps", "0")
    return create_station(config, strict_translations=True)
