"""Nothing can be served: say so plainly, with the help phone; never a Python error."""

from kivy.uix.screenmanager import Screen


class OutOfOrderScreen(Screen):
    pass
