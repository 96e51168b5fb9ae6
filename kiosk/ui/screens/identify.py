"""Asks for the ID card; in simulation it also offers to place the synthetic card."""

from kivy.uix.screenmanager import Screen


class IdentifyScreen(Screen):
    pass
