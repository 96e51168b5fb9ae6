"""The call overlay: a staff member talking with the resident (远程帮办, ``kiosk.shell.call``).

It opens over whatever screen the session is on, which stays as it was underneath (the staff
member guides the resident through it): who is talking (their display name, as the console
sent it), their picture when their browser sends one, a large "end call", the staff member's
voice louder or quieter, and, where the station has a camera, "camera off" / "camera on". When
the call is to be recorded, the question comes first in the volume's place: "record" or "do not
record" (the talk goes on meanwhile). When the call ends (by either side, or because it dropped)
it says so until the resident presses "OK" or a few seconds pass. At most four targets while
talking, one after: within elder mode's six.
"""

from __future__ import annotations

from typing import Any

from kivy.graphics.texture import Texture
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.modalview import ModalView

from flows.call import CallView


def call_texts(call: CallView, lang: str, tr: Any) -> dict[str, str]:
    """The overlay's words in ``lang`` (the resident's language)."""
    volume = f"{round(call.volume * 100)}%"
    if call.phase == "ended":
        status = tr(f"call.ended.{call.ended or 'resident'}", lang)
    elif call.phase == "talking":
        status = tr("call.talking", lang, name=call.staff)
    else:
        status = tr("call.connecting", lang)
    notes = []
    if call.active and call.consent == "ask":  # the question alone, until it is answered
        notes.append(tr("call.consent.ask", lang, days=call.record_days))
    elif call.active:
        notes.append(tr("call.hint", lang))
        if call.camera:
            notes.append(tr("call.camera_is_on" if call.camera_on else "call.camera_is_off", lang))
        if call.consent:
            key = "recording" if call.consent == "yes" else "not_recording"
            notes.append(tr(f"call.consent.{key}", lang))
    return {
        "title": tr("call.title", lang),
        "status": status,
        "hint": "\n".join(notes),
        "volume": tr("call.volume", lang, n=volume),
        "camera": tr("call.camera_off" if call.camera_on else "call.camera_on", lang),
        "picture": tr("call.picture", lang),
    }


class CallOverlay(ModalView):
    title = StringProperty("")
    status = StringProperty("")
    hint = StringProperty("")
    volume = StringProperty("")
    camera_text = StringProperty("")
    picture_text = StringProperty("")
    active = BooleanProperty(False)  # connecting or talking: end and volume shown; else "OK"
    asking = BooleanProperty(False)  # the recording's question in the volume's place
    camera = BooleanProperty(False)  # the station's camera is in the call: its button shown
    picture_seq = NumericProperty(0)  # the staff member's picture shown (0: none)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # ``ids`` holds weak references: a row taken out of the layout would be collected
        ids = self.ids
        self._volume_row = ids.call_volume_row.__self__
        self._consent_row = ids.call_consent_row.__self__
        self._camera_button = ids.call_camera.__self__

    def show(self, call: CallView, lang: str, tr: Any) -> None:
        if not call.phase:
            return
        texts = call_texts(call, lang, tr)
        self.title, self.status, self.hint = texts["title"], texts["status"], texts["hint"]
        self.volume, self.camera_text = texts["volume"], texts["camera"]
        self.picture_text = texts["picture"]
        self.active = call.active
        self.asking = call.active and call.consent == "ask"
        self.camera = call.active and call.camera
        self._rows()
        if not (call.active and call.picture):
            self.picture_seq = 0

    def _rows(self) -> None:
        """The question or the volume, one row in the same place; the camera's button only
        where there is a camera (removed, not hidden: neither the audit nor the keys meet it)."""
        box = self.ids.call_box
        wanted = self._consent_row if self.asking else self._volume_row
        other = self._volume_row if self.asking else self._consent_row
        if other.parent is not None:
            box.remove_widget(other)
        if wanted.parent is None:
            box.add_widget(wanted, index=1)  # above the bottom row
        bottom, button = self.ids.call_bottom_row, self._camera_button
        if self.camera and button.parent is None:
            bottom.add_widget(button, index=1)  # left of "end call"
        elif not self.camera and button.parent is not None:
            bottom.remove_widget(button)

    def show_picture(self, width: int, height: int, rgb: bytes, seq: int) -> None:
        """The staff member's picture (RGB rows top to bottom), on the UI thread."""
        if seq == self.picture_seq:
            return
        image = self.ids.call_picture
        texture = image.texture
        if texture is None or tuple(texture.size) != (width, height):
            texture = Texture.create(size=(width, height), colorfmt="rgb")
            texture.flip_vertical()  # rows come top first; a texture's first row is its bottom
        texture.blit_buffer(rgb, colorfmt="rgb", bufferfmt="ubyte")
        image.texture = texture
        image.canvas.ask_update()
        self.picture_seq = seq
