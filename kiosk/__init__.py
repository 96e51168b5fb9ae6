"""The Kivy app and the composition root of the terminal (the only package that imports kivy)."""

__version__ = "0.1.0"
