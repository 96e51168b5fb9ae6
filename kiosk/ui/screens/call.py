"""The call overlay: a staff member talking with the resident (远程帮办, ``kiosk.shell.call``).

It opens over whatever screen the session is on, which stays as it was underneath (the staff
member guides the resident through it): who is talking (their display name, as the console
sent it), a large "end call", and the staff member's voice louder or quieter. When the call ends
(by either side, or because it dropped) it says so until the resident presses "OK" or a few
seconds pass. Three targets while talking, one after: within elder mode's six.
"""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty
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
    return {
        "title": tr("call.title", lang),
        "status": status,
        "hint": tr("call.hint", lang) if call.active else "",
        "volume": tr("call.volume", lang, n=volume),
    }


class CallOverlay(ModalView):
    title = StringProperty("")
    status = StringProperty("")
    hint = StringProperty("")
    volume = StringProperty("")
    active = BooleanProperty(False)  # connecting or talking: end and volume shown; else "OK"

    def show(self, call: CallView, lang: str, tr: Any) -> None:
        if not call.phase:
            return
        texts = call_texts(call, lang, tr)
        self.title, self.status, self.hint = texts["title"], texts["status"], texts["hint"]
        self.volume = texts["volume"]
        self.active = call.active
