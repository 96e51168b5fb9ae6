"""Maintenance mode: device states, test prints, versions, network and broker, the log tail."""

from kivy.uix.screenmanager import Screen


class MaintenanceScreen(Screen):
    pass
