"""A card left on the reader at the end of a session: asked for, full screen, until it is taken.

Spoken on arrival and again every so often (:data:`flows.session.REMIND_TAKE_CARD_S`), shown in
the session's language with a picture of the reader with the card on it. It has no button of
its own: only taking the card away ends it (the console hears of it after a while:
:mod:`kiosk.shell.leftcard`)."""

from kivy.uix.screenmanager import Screen


class TakeCardScreen(Screen):
    pass
