"""The terminal's configuration: one TOML file, typed and validated at start-up.

Every value has a default, and the defaults give the simulated station that ``make run`` starts.
The documented example is ``assets/config/kiosk.example.toml``.

A technician edits this file on a terminal, often over a slow remote shell, so a wrong file stops
start-up with every mistake at once (:class:`ConfigProblems`), one line each, in words that name
the file, the key, what is allowed and what was found, never a regular expression or a
traceback: bytes that are not UTF-8, nesting too deep for the parser, unknown keys, wrong types
(strictly: TOML has real types, so ``"9600"`` is not a number), values out of range, and a state
directory the kiosk cannot use (:func:`state_dir_problem`). The words for a value's form sit on the
field itself (``Field(description=...)``), next to the rule they explain.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from flows.errors import ConfigError


class ConfigProblems(ConfigError):
    """Every mistake found in one configuration, one line each, naming the file and the key."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


ID_FORM = "lower-case letters, digits and `-`, 2 to 63 characters, not starting with `-`"


class StationSection(_Section):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description=ID_FORM)] = (
        "demo-0001"
    )
    site: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", description=ID_FORM)] = (
        "demo-site"
    )
    lang: Literal["zh", "en"] = "zh"
    elder_default: bool = False
    catalog: str = ""  # empty: the demo catalog shipped in assets/
    # a card left on the reader at the end of a session is asked for on the screen at once; the
    # console is alerted (card_left_behind) when it is still there after this many seconds
    card_left_alert_s: Annotated[float, Field(ge=1, le=3600)] = 120.0


class StateSection(_Section):
    dir: str = ""  # empty: the platform's state directory for "station-kiosk"


HOURS_PATTERN = r"^$|^([01]\d|2[0-4]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
HOURS_FORM = "empty or `HH:MM-HH:MM`, e.g. `21:00-08:00`"


KEY_NAMES = ("up", "down", "back", "select", "help", "volume_up", "volume_down", "headphones")


class DevicesSection(_Section):
    id_reader: Annotated[
        str, Field(pattern=r"^(sim|sam:.+)$", description="`sim` or `sam:/dev/…` (a serial port)")
    ] = "sim"
    id_reader_baud: Literal[9600, 19200, 38400, 57600, 115200] = 115200
    smartcard_reader: Annotated[
        str, Field(pattern=r"^(|pcsc|pcsc:.+)$", description="empty, `pcsc` or `pcsc:NAME PREFIX`")
    ] = ""
    smartcard_profile: str = ""  # a TOML card profile; empty: the social security card
    a4_printer: Annotated[
        str,
        Field(
            pattern=r"^(sim|cups:[A-Za-z0-9_-]+(@[\w.-]+:\d+)?)$",
            description="`sim`, `cups:QUEUE` or `cups:QUEUE@HOST:PORT`",
        ),
    ] = "sim"
    thermal_printer: Annotated[
        str,
        Field(
            pattern=r"^(sim(:[a-z0-9-]+)?|tcp:[\w.-]+:\d+|(serial|usb):/\S+)$",
            description="`sim`, `sim:PROFILE`, `tcp:HOST:PORT`, `serial:/dev/…` or `usb:/dev/…`",
        ),
    ] = "sim"
    # a serial thermal printer: as its self-test page says (Linux has no DTR/DSR flow control)
    thermal_printer_baud: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    thermal_printer_flow: Literal["none", "rtscts", "xonxoff"] = "none"
    # the model as python-escpos' capabilities database names it (QR code, cutter, width)
    thermal_printer_model: str = "default"
    thermal_printer_width: Literal[0, 58, 80] = 0  # paper in mm; 0: the model's (unknown: 58)
    thermal_printer_status: Literal["auto", "dle-eot", "none"] = "auto"  # DLE EOT answers

    @field_validator("thermal_printer_model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model == "default":
            return model
        from drivers.escpos.profiles import models  # python-escpos: only when a model is named

        known = models()
        if model not in known:
            close = difflib.get_close_matches(model, known, n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(f'`{c}`' for c in close)}?)" if close else ""
            raise ValueError(
                f"must be a model of python-escpos' capabilities database, e.g. `default`, "
                f"`TM-T20II`, `NT-5890K`, `POS-5890`{hint}; got `{model}`"
            )
        return model

    @field_validator("thermal_printer")
    @classmethod
    def _known_sim_profile(cls, spec: str) -> str:
        if spec.startswith("sim:"):
            from drivers.escpos.paper import SIM_PROFILES

            if spec[4:] not in SIM_PROFILES:
                choices = ", ".join(f"`sim:{name}`" for name in SIM_PROFILES)
                raise ValueError(f"must be `sim` or one of {choices}; got `{spec}`")
        return spec

    speech: Literal["espeak", "off"] = "espeak"
    speech_rate_zh: Annotated[int, Field(ge=60, le=400)] = 165  # espeak-ng words per minute
    speech_rate_en: Annotated[int, Field(ge=60, le=400)] = 165
    speech_elder_factor: Annotated[float, Field(ge=0.4, le=1.0)] = 0.8  # elder mode: slower
    speech_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8  # the station's default
    speech_quiet_hours: Annotated[str, Field(pattern=HOURS_PATTERN, description=HOURS_FORM)] = (
        "21:00-08:00"
    )
    speech_quiet_volume: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5  # in the quiet hours
    audio_player: str = "aplay"
    audio_player_args: list[str] = Field(default_factory=list)
    # the tactile keypad (USB HID, EZ Access style) and a keyboard in tests: Kivy key codes that
    # move the focus, choose, go back, say the page, turn the voice up and down (kiosk.ui.focus)
    key_up: list[int] = Field(default_factory=lambda: [273])  # arrow up
    key_down: list[int] = Field(default_factory=lambda: [274])  # arrow down
    key_back: list[int] = Field(default_factory=lambda: [8])  # backspace
    key_select: list[int] = Field(default_factory=lambda: [13, 271])  # enter, keypad enter
    key_help: list[int] = Field(default_factory=lambda: [282])  # F1
    key_volume_up: list[int] = Field(default_factory=lambda: [270, 61])  # keypad +, =
    key_volume_down: list[int] = Field(default_factory=lambda: [269, 45])  # keypad -, -
    key_headphones: list[int] = Field(default_factory=list)  # headphones="key": plugged/unplugged
    # the headphone jack: "" none, "alsa:CARD" (ALSA's "Headphone Jack" control, polled), "key"
    # (where the jack is not detected: key_headphones says so) or "file:PATH" ("1" plugged, a
    # simulated jack); speech then goes to headphone_player_args' device only (-D DEVICE)
    headphones: Annotated[
        str,
        Field(
            pattern=r"^(|key|alsa:\S+|file:.+)$",
            description="empty, `key`, `alsa:CARD` or `file:PATH`",
        ),
    ] = ""
    headphone_player_args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _keys_distinct(self) -> DevicesSection:
        seen: dict[int, str] = {}
        for name in KEY_NAMES:
            for code in getattr(self, f"key_{name}"):
                if not 0 < code < 100_000:
                    raise ValueError(f"key_{name}: {code} is not a key code")
                if code in seen and seen[code] != name:
                    raise ValueError(f"key code {code} is both key_{seen[code]} and key_{name}")
                seen[code] = name
        if self.headphones and not self.headphone_player_args:
            raise ValueError('headphones: set headphone_player_args, e.g. ["-D", "plughw:0,1"]')
        return self


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
    touch_input: Annotated[
        str,
        Field(
            pattern=r"^(mouse|(mtdev|hidinput):/dev/input/\S+)$",
            description="`mouse`, `mtdev:/dev/input/…` or `hidinput:/dev/input/…`",
        ),
    ] = "mouse"


class ProvidersSection(_Section):
    http_url: Annotated[
        str, Field(pattern=r"^$|^https?://.+", description="empty or an `http(s)://` address")
    ] = ""
    http_auth_header: str = ""  # e.g. "Authorization: Bearer TOKEN"


class FleetSection(_Section):
    broker: Annotated[
        str, Field(pattern=r"^$|^[\w.-]+:\d+$", description="empty or `HOST:PORT`")
    ] = ""
    health_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # TLS with this station's certificate (CN = station id), all three or none: the broker's
    # production configuration (assets/mosquitto) refuses clients without one
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @model_validator(mode="after")
    def _tls_all_or_none(self) -> FleetSection:
        tls = (self.ca_file, self.cert_file, self.key_file)
        if any(tls) and not all(tls):
            raise ValueError("ca_file, cert_file and key_file: set all three or none")
        return self


PIN_HASH_PATTERN = r"^$|^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$"


class MaintenanceSection(_Section):
    # scrypt hash of the technicians' PIN, made by `kiosk pin-hash`; empty: no maintenance mode
    pin_hash: Annotated[
        str, Field(pattern=PIN_HASH_PATTERN, description="empty or what `kiosk pin-hash` prints")
    ] = ""


class CallSection(_Section):
    """A staff member's call (issue 22, ``kiosk.shell.call``): where its sound comes from and
    goes, and the camera, as FFmpeg (PyAV) names inputs and outputs. No microphone: no call at
    this station; no camera: a call by voice, the staff member's picture still shown."""

    microphone: str = ""  # e.g. "default" (with microphone_format "alsa"); a .wav loops (tests)
    microphone_format: str = ""  # "alsa" (PyAV's FFmpeg has no "pulse"); empty: a file
    speaker: str = "default"  # an ALSA device; a .wav file records what is heard (tests only)
    speaker_format: str = "alsa"
    ice_servers: list[
        Annotated[str, Field(pattern=r"^(stun|turns?):\S+$", description="`stun:`/`turn:` URL")]
    ] = Field(default_factory=list)  # e.g. ["turn:turn.example:3478?transport=udp"]
    turn_username: str = ""
    turn_password: str = ""
    # the media only through the TURN server (WebRTC's relay policy), never directly: for
    # networks that must not send media to or from the station's own address (docs/deploy.md)
    ice_relay_only: bool = False
    camera: str = ""  # e.g. "/dev/video0" (with camera_format "v4l2"); a .y4m loops (tests)
    camera_format: str = ""  # "v4l2"; empty: a file
    camera_size: Annotated[
        str,
        Field(pattern=r"^(|\d{2,4}x\d{2,4})$", description="e.g. `640x480`; empty: the camera's"),
    ] = "640x480"

    @model_validator(mode="after")
    def _relay_needs_turn(self) -> CallSection:
        if self.ice_relay_only and not (
            any(url.startswith("turn") for url in self.ice_servers)
            and self.turn_username
            and self.turn_password
        ):
            raise ValueError(
                "ice_relay_only = true needs a `turn:` URL in ice_servers, turn_username and "
                "turn_password: without a TURN server no call could connect"
            )
        return self


class Config(_Section):
    version: Literal[1] = 1
    station: StationSection = StationSection()
    state: StateSection = StateSection()
    devices: DevicesSection = DevicesSection()
    ui: UiSection = UiSection()
    providers: ProvidersSection = ProvidersSection()
    fleet: FleetSection = FleetSection()
    maintenance: MaintenanceSection = MaintenanceSection()
    call: CallSection = CallSection()

    @property
    def state_dir(self) -> Path:
        if self.state.dir:
            return Path(self.state.dir).expanduser()
        return Path(platformdirs.user_state_dir("station-kiosk"))


# --- mistakes, in words ---------------------------------------------------------------------------

SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation
    for name, field in Config.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)
}

TYPES = {
    "string_type": "must be text in quotes",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be `true` or `false`",
    "list_type": 'must be a list of texts, e.g. `["-D", "null"]`',
    "model_type": "must be a section (a table)",
    "dict_type": "must be a section (a table)",
}
RANGES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _shown(value: Any) -> str:
    """A value as the mistake's line quotes it: short, one line, never a nested structure."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value == "":
        return "an empty text"
    text = str(value)
    cut = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:60])
    return f"`{cut}…`" if len(text) > 60 else f"`{cut}`"


def _field(loc: tuple[int | str, ...]) -> FieldInfo | None:
    if len(loc) == 1 and loc[0] in Config.model_fields:
        return Config.model_fields[str(loc[0])]
    section = SECTIONS.get(str(loc[0])) if loc else None
    if section is not None and len(loc) >= 2:
        return section.model_fields.get(str(loc[1]))
    return None


def _where(loc: tuple[int | str, ...]) -> str:
    """``[devices] thermal_printer`` for a key, ``[devices]`` for a section, ``version``."""
    if not loc:
        return "the file"
    head = str(loc[0])
    if head not in SECTIONS and len(loc) == 1:
        return f"`{head}`"
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:]).lstrip(".")
    return f"[{head}] {key}" if key else f"[{head}]"


def _choices(values: Sequence[object]) -> str:
    quoted = [f"`{str(v).lower() if isinstance(v, bool) else v}`" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _range(field: FieldInfo) -> str:
    """``from 640 to 7680``, ``more than 7 and less than 100``, from the field's own bounds."""
    low = high = ""
    for rule in field.metadata:
        if getattr(rule, "ge", None) is not None:
            low = f"at least {rule.ge:g}"
        elif getattr(rule, "gt", None) is not None:
            low = f"more than {rule.gt:g}"
        elif getattr(rule, "le", None) is not None:
            high = f"at most {rule.le:g}"
        elif getattr(rule, "lt", None) is not None:
            high = f"less than {rule.lt:g}"
    if low.startswith("at least") and high.startswith("at most"):
        return f"from {low.removeprefix('at least ')} to {high.removeprefix('at most ')}"
    return " and ".join(part for part in (low, high) if part)


def _unknown(loc: tuple[int | str, ...], value: Any) -> str:
    if len(loc) == 1:
        known = [*SECTIONS, "version"]
        what = f"[{loc[0]}] is not a known section" if isinstance(value, dict) else None
        what = what or f"`{loc[0]}` is not a known key at the top of the file"
    else:
        section = SECTIONS.get(str(loc[0]))
        known = list(section.model_fields) if section is not None else []
        what = f"{_where(loc)} is not a known key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return what + (f" (did you mean `{close[0]}`?)" if close else "")


def describe(err: Mapping[str, Any]) -> str:
    """One validation error in words: where, what is allowed and what was found."""
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    if kind == "extra_forbidden":
        return _unknown(loc, value)
    if kind == "value_error":  # a rule across keys (a model validator): its own words
        return f"{_where(loc)} {err.get('ctx', {}).get('error', err['msg'])}"
    field = _field(loc) if len(loc) <= 2 else None
    quoted = False  # a number or a truth value written in quotes: say so, show the quotes
    if kind == "string_pattern_mismatch" and field is not None and field.description:
        rule = f"must be {field.description}"
    elif kind == "literal_error" and field is not None:
        choices = typing.get_args(field.annotation)
        rule = f"must be {_choices(choices)}"
        quoted = isinstance(value, str) and not any(isinstance(c, str) for c in choices)
    elif kind in RANGES and field is not None and _range(field):
        rule = f"must be {_range(field)}"
    elif kind in TYPES:
        rule = TYPES[kind]
        quoted = isinstance(value, str) and kind != "string_type"
    else:
        rule = str(err["msg"]).lower()
    if quoted:
        return f'{_where(loc)} {rule}, without quotes; got `"{_shown(value)[1:-1]}"`'
    return f"{_where(loc)} {rule}; got {_shown(value)}"


def parse_config(data: dict[str, Any], *, source: str) -> Config:
    """Validate ``data``; raises :class:`ConfigProblems` with every mistake, each naming
    ``source`` and the key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        problems = [f"{source}: {describe(e)}" for e in err.errors(include_url=False)]
        raise ConfigProblems(problems) from None


# --- reading the file -----------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigProblems([f"{path}: cannot be read: {err.strerror or err}"]) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Windows editors) is no mistake
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise ConfigProblems(
            [
                f"{path}: is not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}, "
                f"column {column} (save the file as UTF-8)"
            ]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigProblems([f"{path}: is not valid TOML: {err}"]) from None
    except RecursionError:
        raise ConfigProblems(
            [f"{path}: is not valid TOML for the kiosk: arrays or tables nest too deeply"]
        ) from None


def state_dir_problem(path: Path) -> str | None:
    """Why the kiosk cannot keep its journal, logs and keys in ``path`` (made if missing), or
    None when it can."""
    try:
        if path.exists() and not path.is_dir():
            return f"`{path}` is a file, not a folder"
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"`{path}` cannot be made: `{blocker}` is a file, not a folder"
        return f"`{path}` cannot be made or written: {err.strerror or err}"
    return None


def load_config(path: Path | None, *, state_dir: bool = False, broker: bool = False) -> Config:
    """Read and validate ``path``; ``None`` gives the defaults (the simulated station).

    ``state_dir``: also make sure the state directory is usable (commands that write there);
    ``broker``: ``[fleet] broker`` must be set (the agent). Raises :class:`ConfigProblems` with
    every mistake found, section by section."""
    source = str(path) if path is not None else "the default configuration"
    data = _read(path) if path is not None else {}
    problems: list[str] = []
    # the other checks read their own section even when mistakes elsewhere stop the whole
    state = _state_section(data)
    if state_dir and state is not None:
        folder = Config(state=state).state_dir
        why = state_dir_problem(folder)
        if why:
            problems.append(f"{source}: [state] dir {why}; the kiosk keeps its journal there")
        else:  # before [devices] thermal_printer_model's check first imports python-escpos
            keep_escpos_cache(folder)
    config: Config | None = None
    try:
        config = parse_config(data, source=source)
    except ConfigProblems as err:
        problems[:0] = err.problems
    fleet = data.get("fleet", {})
    if broker and isinstance(fleet, dict) and fleet.get("broker", "") == "":
        problems.append(f"{source}: [fleet] broker is empty: the agent needs `HOST:PORT`")
    if problems or config is None:
        raise ConfigProblems(problems)
    return config


def keep_escpos_cache(state_dir: Path) -> None:
    """python-escpos' capabilities pickle in the state directory, not a new folder in ``/tmp``
    each start (``drivers.escpos``); to be called before anything imports python-escpos."""
    from drivers.escpos import keep_capabilities_in

    keep_capabilities_in(state_dir / "escpos-cache")


def _state_section(data: dict[str, Any]) -> StateSection | None:
    """``[state]`` on its own, or None when it has mistakes of its own (already reported)."""
    try:
        return StateSection.model_validate(data.get("state", {}))
    except ValidationError:
        return None
