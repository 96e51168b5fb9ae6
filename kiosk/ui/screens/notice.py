"""The one-time materials notice: everything a staffed window will need, large and spoken."""

from kivy.uix.screenmanager import Screen


class NoticeScreen(Screen):
    pass
