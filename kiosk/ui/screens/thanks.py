"""The thank-you that closes a session: what was said, shown large, then home by itself.

Short on purpose (:data:`flows.session.TIMEOUTS_S` ``thanks``: 5 s, 10 s in elder mode) and not
extendable: a touch does not keep it, and the button goes home at once."""

from kivy.uix.screenmanager import Screen


class ThanksScreen(Screen):
    pass
