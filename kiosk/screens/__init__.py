"""One screen per session state: a ``.py`` for behaviour and a ``.kv`` for layout each.

``SCREENS`` maps the state chart's state ids to screen classes: the one place where flow states
become screens.
"""

from __future__ import annotations

from kivy.uix.screenmanager import Screen

from kiosk.screens.choose import ChooseScreen
from kiosk.screens.home import HomeScreen
from kiosk.screens.identify import IdentifyScreen
from kiosk.screens.maintenance import MaintenanceScreen
from kiosk.screens.notice import NoticeScreen
from kiosk.screens.out_of_order import OutOfOrderScreen
from kiosk.screens.preview import PreviewScreen
from kiosk.screens.printing import PrintingScreen
from kiosk.screens.rate import RateScreen
from kiosk.screens.unlock import UnlockScreen

SCREENS: dict[str, type[Screen]] = {
    "idle": HomeScreen,
    "out_of_order": OutOfOrderScreen,
    "identify": IdentifyScreen,
    "choose": ChooseScreen,
    "notice": NoticeScreen,
    "preview": PreviewScreen,
    "printing": PrintingScreen,
    "rate": RateScreen,
    "unlock": UnlockScreen,
    "maintenance": MaintenanceScreen,
}
