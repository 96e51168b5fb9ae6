"""Choosing and starting the drivers named in ``[devices]``; "sim" starts the simulated peer too.

A simulated device is the real driver talking to a simulator that speaks the same wire protocol:
the GA 467 SAM simulator on a pseudo-terminal, the ESC/POS simulator on a TCP port, a private
cupsd with a simulated network printer. Only the speech output is real in every mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from drivers.cups.printer import CupsPrinter
from drivers.escpos import profiles as thermal_profiles
from drivers.escpos.paper import DEFAULT_SIM_PROFILE
from drivers.escpos.printer import EscposPrinter
from drivers.escpos.simulator import EscposSimulator
from drivers.pcsc.profiles import SOCIAL_SECURITY, load_profile
from drivers.pcsc.reader import PcscReader
from drivers.providers.demo import DemoProvider, generate_dataset
from drivers.providers.http import HttpProvider
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from drivers.speech.voice import Pyttsx3Speech
from flows.models import DeviceHealth, DeviceState
from flows.ports import DocumentProvider
from kiosk.config import Config, DevicesSection
from kiosk.shell.deviceset import Devices
from sandbox.cups import CupsSandbox

log = logging.getLogger("kiosk.shell.devices")


class SpeechOff:
    """Speech switched off in the configuration: reported as such, never silently."""

    name = "speech"

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        return None

    def stop(self) -> None:
        return None

    def busy(self) -> bool:
        return False

    def prewarm(self, items: list[tuple[str, str]]) -> None:
        return None

    def set_volume(self, level: float) -> None:
        return None

    def route(self, headphones: bool) -> bool:
        return False

    def close(self) -> None:
        return None

    def health(self) -> DeviceHealth:
        return DeviceHealth("speech", "speech", DeviceState.OFFLINE, ("disabled_in_config",))


def thermal_profile(dev: DevicesSection) -> thermal_profiles.PrinterProfile:
    """The thermal printer's profile: its model in python-escpos' database, the station's
    paper width and status setting (:mod:`drivers.escpos.profiles`)."""
    return thermal_profiles.load_profile(
        dev.thermal_printer_model,
        width_mm=dev.thermal_printer_width,
        status=dev.thermal_printer_status,
    )


def build_devices(config: Config, state_dir: Path) -> tuple[Devices, Callable[[str], None] | None]:
    """Make every driver; returns the devices and, in simulation, a card-simulator control."""
    closers: list[Callable[[], None]] = []
    simulate: Callable[[str], None] | None = None
    dev = config.devices

    if dev.id_reader == "sim":
        sam_sim = SamSimulator()
        sam_sim.start()
        closers.append(sam_sim.stop)
        port = sam_sim.port
        simulate = _sam_control(sam_sim)
    else:
        port = dev.id_reader.removeprefix("sam:")
    id_reader = SamReader(port, baud=dev.id_reader_baud)

    if dev.a4_printer == "sim":
        sandbox = CupsSandbox(state_dir / "cups")
        sandbox.start()
        closers.append(sandbox.stop)
        a4 = CupsPrinter(sandbox.queue, server=sandbox.server)
        log.info("simulated A4 printer: files that leave CUPS go to %s", sandbox.out_dir)
    else:
        spec = dev.a4_printer.removeprefix("cups:")
        queue, _, server = spec.partition("@")
        a4 = CupsPrinter(queue, server=server or None)

    printer_profile = thermal_profile(dev)
    if dev.thermal_printer.startswith("sim"):
        sim_profile = dev.thermal_printer.partition(":")[2] or DEFAULT_SIM_PROFILE.name
        escpos_sim = EscposSimulator(out_dir=state_dir / "receipts", profile=sim_profile)
        escpos_sim.start()
        closers.append(escpos_sim.stop)
        thermal = EscposPrinter(escpos_sim.url, profile=printer_profile)
    else:
        thermal = EscposPrinter(
            dev.thermal_printer,
            baud=dev.thermal_printer_baud,
            flow=dev.thermal_printer_flow,
            profile=printer_profile,
        )

    speech: Pyttsx3Speech | SpeechOff
    if dev.speech == "off":
        speech = SpeechOff()
    else:
        speech = Pyttsx3Speech(
            state_dir / "voice-cache",
            player=dev.audio_player,
            player_args=tuple(dev.audio_player_args),
            headphone_args=tuple(dev.headphone_player_args),
            rate_wpm={"zh": dev.speech_rate_zh, "en": dev.speech_rate_en},
            elder_rate_factor=dev.speech_elder_factor,
            volume=dev.speech_volume,
        )
    smartcard: PcscReader | None = None
    if dev.smartcard_reader:
        profile = (
            load_profile(Path(dev.smartcard_profile)) if dev.smartcard_profile else SOCIAL_SECURITY
        )
        smartcard = PcscReader(
            reader_prefix=dev.smartcard_reader.partition(":")[2], profile=profile
        )
    providers: dict[str, DocumentProvider] = {
        "demo": DemoProvider(generate_dataset(state_dir / "demo-records.sqlite3"))
    }
    if config.providers.http_url:
        providers["http"] = HttpProvider(
            config.providers.http_url, auth_header=config.providers.http_auth_header
        )
    devices = Devices(id_reader, a4, thermal, speech, providers, closers)
    devices.smartcard_reader = smartcard
    return devices, simulate


def _sam_control(sim: SamSimulator) -> Callable[[str], None]:
    from flows.synthetic import DEMO_RESIDENT

    def control(action: str) -> None:
        if action == "insert":
            sim.insert(DEMO_RESIDENT)
        elif action == "remove":
            sim.remove()

    return control
