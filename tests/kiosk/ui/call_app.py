"""Runs the real kiosk app through a staff member's call, with touches (used by test_call_gui).

Started as a subprocess on the test's Xvfb display, like help_app.py. In elder mode and the
language asked for, a resident starts a session, touches Help and closes the overlay (``AT
help``); the test, as the technician in a headless Chromium on a real console, calls. This script
waits for the call overlay, checks it with the elder-mode audit (sizes, contrast, at most six
targets), turns the voice up, takes screenshots, and ends the call with the big button; the
overlay says the call has ended and the session underneath is where it was. On the way it waits
for the staff member's picture (``PICTURE`` says where it is drawn, for the test to look at the
screenshot), turns the station's camera off (``CAMERA``) and, once the test has seen black on the
technician's page (the file ``--go`` appears), on again.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from help_app import Spoken
from journey_app import Journey


class CallRun(Journey):
    station: Any = None
    go = ""
    consent = "yes"  # the resident's answer, if the call is to be recorded

    def script(self) -> Iterator[None]:
        app = self.app
        yield from self.wait_screen("idle")
        if self.lang != app.vm.lang:
            self.tap(self.top_bar().ids.lang_button)
            yield from self.wait(lambda: app.vm.lang == self.lang, 5, "language switch")
        self.tap(self.top_bar().ids.elder_button)
        yield from self.wait(lambda: app.vm.elder, 5, "elder mode")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.tap(self.top_bar().ids.help_button)
        yield from self.wait(lambda: app.help_view.parent is not None, 5, "help overlay")
        self.tap(app.help_view.ids.close_help)
        yield from self.wait(lambda: app.help_view.parent is None, 5, "help closed")
        print("AT help", flush=True)
        view = app.call_view
        yield from self.wait(lambda: view.parent is not None, 60, "the call overlay")
        print(f"CONNECTING {view.ids.call_status.text!r}", flush=True)
        yield from self.wait(lambda: "tech" in view.ids.call_status.text, 30, "talking")
        print(f"TALKING {view.ids.call_status.text!r}", flush=True)
        if view.asking:  # the console records calls: the question comes first
            yield from self.wait(lambda: view.ids.call_consent_yes.width > 0, 5, "the question")
            self.shot(f"call-0-consent-{self.lang}-elder")
            from kiosk.ui.audit import audit

            asked = audit(view, app.theme, elder=True, font=self.station.font, name="consent")
            for problem in asked.problems:
                print(f"AUDIT {problem}", flush=True)
            print(f"CONSENT_TARGETS {asked.targets}", flush=True)
            print(f"CONSENT_ASKED {view.ids.call_hint.text!r}", flush=True)
            yes = self.consent == "yes"
            self.tap(view.ids.call_consent_yes if yes else view.ids.call_consent_no)
            yield from self.wait(lambda: not view.asking, 5, "the answer taken")
            print(f"CONSENT {self.consent} {view.ids.call_hint.text!r}", flush=True)
        yield from self.wait(lambda: view.picture_seq > 0, 30, "the staff member's picture")
        image = view.ids.call_picture
        (w, h), (cx, cy) = image.norm_image_size, image.center
        x, y = image.to_window(cx - w / 2, cy - h / 2)
        print(
            f"PICTURE {round(x)} {round(y)} {round(w)} {round(h)}", flush=True
        )  # from bottom left
        self.shot(f"call-1-talking-{self.lang}-elder")
        from kiosk.ui.audit import audit

        found = audit(view, app.theme, elder=True, font=self.station.font, name="call")
        for problem in found.problems:
            print(f"AUDIT {problem}", flush=True)
        print(f"TARGETS {found.targets}", flush=True)
        before = view.ids.call_volume.text
        self.tap(view.ids.call_louder)
        yield from self.wait(lambda: view.ids.call_volume.text != before, 5, "louder")
        print(f"VOLUME {before!r} {view.ids.call_volume.text!r}", flush=True)
        camera = view.ids.call_camera
        before = camera.text
        self.tap(camera)  # the resident turns the camera off
        yield from self.wait(lambda: camera.text != before, 5, "camera off")
        print(f"CAMERA {before!r} {camera.text!r}", flush=True)
        self.shot(f"call-1b-camera-off-{self.lang}-elder")
        yield from self.wait(lambda: os.path.exists(self.go), 60, "the test's go")
        self.tap(camera)  # and on again
        yield from self.wait(lambda: camera.text == before, 5, "camera on")
        self.tap(view.ids.call_end)  # the resident ends the call
        yield from self.wait(lambda: not view.active, 10, "the call ended")
        print(f"ENDED {view.ids.call_status.text!r}", flush=True)
        self.shot(f"call-2-ended-{self.lang}-elder")
        yield from self.wait(lambda: view.parent is None, 10, "the overlay closed by itself")
        print(f"UNDER {app.manager.current}", flush=True)
        self.shot(f"call-3-after-{self.lang}-elder")
        self.ok = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--go", required=True)
    parser.add_argument("--consent", choices=["yes", "no"], default="yes")
    args = parser.parse_args()
    station = kiosk_station(args.config)
    runtime = station.runtime
    runtime.devices.speech = Spoken(runtime.devices.speech)
    app = station.build_app()
    run = CallRun(app, Path(args.artifacts), args.lang, "call")
    run.station = station
    run.go = args.go
    run.consent = args.consent
    from kivy.clock import Clock

    Clock.schedule_once(run.begin, 0.5)
    app.run()
    if not run.ok:
        print(f"CALL RUN FAILED: {run.error}", file=sys.stderr, flush=True)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
