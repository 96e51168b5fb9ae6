"""The terminal's configuration: one TOML file, typed and validated at start-up.

A wrong key or value stops start-up with a message that names the file, the key and what is
allowed (:class:`flows.errors.ConfigError`). Every value has a default, and the defaults give the
simulated station that ``make run`` starts. The documented example is
``assets/config/kiosk.example.toml``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationSection(_Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")] = "demo-0001"
    site: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")] = "demo-site"
    lang: Literal["zh", "en"] = "zh"
    elder_default: bool = False
    catalog: str = ""  # empty: the demo catalog shipped in assets/


class StateSection(_Section):
    dir: str = ""  # empty: the platform's state directory for "station-kiosk"


HOURS_PATTERN = r"^$|^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"


class DevicesSection(_Section):
    id_reader: Annotated[str, Field(pattern=r"^(sim|sam:.+)$")] = "sim"
    id_reader_baud: Literal[9600, 19200, 38400, 57600, 115200] = 115200
    smartcard_reader: Annotated[str, Field(pattern=r"^(|pcsc|pcsc:.+)$")] = ""
    smartcard_profile: str = ""  # a TOML card profile; empty: the social security card
    a4_printer: Annotated[str, Field(pattern=r"^(sim|cups:[A-Za-z0-9_-]+(@[\w.-]+:\d+)?)$")] = "sim"
    thermal_printer: Annotated[str, Field(pattern=r"^(sim|tcp:[\w.-]+:\d+|(serial|usb):/\S+)$")] = (
        "sim"
    )
    # a serial thermal printer: as its self-test page says (Linux has no DTR/DSR flow control)
    thermal_printer_baud: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    thermal_printer_flow: Literal["none", "rtscts", "xonxoff"] = "none"
    speech: Literal["espeak", "off"] = "espeak"
    speech_rate_zh: Annotated[int, Field(ge=60, le=400)] = 165  # espeak-ng words per minute
    speech_rate_en: Annotated[int, Field(ge=60, le=400)] = 165
    speech_elder_factor: Annotated[float, Field(ge=0.4, le=1.0)] = 0.8  # elder mode: slower
    speech_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8  # the station's default
    speech_quiet_hours: Annotated[str, Field(pattern=HOURS_PATTERN)] = "21:00-08:00"
    speech_quiet_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5  # in the quiet hours
    audio_player: str = "aplay"
    audio_player_args: list[str] = Field(default_factory=list)


class UiSection(_Section):
    fullscreen: bool = False
    width: Annotated[int, Field(ge=640, le=7680)] = 1920
    height: Annotated[int, Field(ge=480, le=7680)] = 1080
    screen_diagonal_in: Annotated[float, Field(gt=7, lt=100)] = 21.5
    viewing_distance_mm: Annotated[float, Field(ge=250, le=1500)] = 500.0
    show_simulator_controls: bool = True
    attract_every_s: Annotated[float, Field(ge=0, le=86400)] = 300.0  # 0: say it only once
    # where touches come from: "mouse" (X turns the touchscreen into pointer events) or one
    # device provider such as "mtdev:/dev/input/event5"; never both, or a touch counts twice
    touch_input: Annotated[str, Field(pattern=r"^(mouse|(mtdev|hidinput):/dev/input/\S+)$")] = (
        "mouse"
    )


class ProvidersSection(_Section):
    http_url: Annotated[str, Field(pattern=r"^$|^https?://.+")] = ""
    http_auth_header: str = ""  # e.g. "Authorization: Bearer TOKEN"


class FleetSection(_Section):
    broker: Annotated[str, Field(pattern=r"^$|^[\w.-]+:\d+$")] = ""
    health_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # TLS with this station's certificate (CN = station id), all three or none: the broker's
    # production configuration (assets/mosquitto) refuses clients without one
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


PIN_HASH_PATTERN = r"^$|^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$"


class MaintenanceSection(_Section):
    # scrypt hash of the technicians' PIN, made by `kiosk pin-hash`; empty: no maintenance mode
    pin_hash: Annotated[str, Field(pattern=PIN_HASH_PATTERN)] = ""


class Config(_Section):
    version: Literal[1] = 1
    station: StationSection = StationSection()
    state: StateSection = StateSection()
    devices: DevicesSection = DevicesSection()
    ui: UiSection = UiSection()
    providers: ProvidersSection = ProvidersSection()
    fleet: FleetSection = FleetSection()
    maintenance: MaintenanceSection = MaintenanceSection()

    @property
    def state_dir(self) -> Path:
        if self.state.dir:
            return Path(self.state.dir).expanduser()
        return Path(platformdirs.user_state_dir("station-kiosk"))


def _describe(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "is not a known key"
    if kind == "literal_error":
        allowed = err.get("ctx", {}).get("expected", "")
        return f"must be one of {allowed}"
    if kind == "string_pattern_mismatch":
        return f"must match {err.get('ctx', {}).get('pattern', '')}"
    return str(err["msg"]).lower()


def parse_config(data: dict[str, Any], *, source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"]]
        key = f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 else loc[0] if loc else "(file)"
        value = f" (got {first['input']!r})" if first["type"] != "extra_forbidden" else ""
        raise ConfigError(f"{source}: {key}: {_describe(first)}{value}") from err


def load_config(path: Path | None) -> Config:
    """Read and validate ``path``; ``None`` gives the defaults (the simulated station)."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err.strerror}") from err
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: is not valid TOML: {err}") from err
    return parse_config(data, source=str(path))
