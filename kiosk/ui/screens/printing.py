"""Printing in progress; no cancel here, paper that has started must come out."""

from kivy.uix.screenmanager import Screen


class PrintingScreen(Screen):
    pass
