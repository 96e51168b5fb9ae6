"""The attract screen: what this station does and how to start, in large type."""

from kivy.uix.screenmanager import Screen


class HomeScreen(Screen):
    pass
