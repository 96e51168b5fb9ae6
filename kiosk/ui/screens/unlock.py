"""The technicians' PIN pad, behind the hidden gesture: large keys, no keyboard, a lockout."""

from kivy.uix.screenmanager import Screen


class UnlockScreen(Screen):
    pass
