"""Shows the document exactly as it will print (the PDF rendered to an image) or the slip text."""

from kivy.uix.screenmanager import Screen


class PreviewScreen(Screen):
    pass
