"""One screen per session state: a ``.py`` for behaviour and a ``.kv`` for layout each.

``SCREENS`` maps the state chart's state ids to screen classes: the one place where flow states
become screens.
"""

from __future__ import annotations

from kivy.uix.screenmanager import Screen

from kiosk.ui.screens.choose import ChooseScreen
from kiosk.ui.screens.home import HomeScreen
from kiosk.ui.screens.identify import IdentifyScreen
from kiosk.ui.screens.maintenance import MaintenanceScreen
from kiosk.ui.screens.notice import NoticeScreen
from kiosk.ui.screens.out_of_order import OutOfOrderScreen
from kiosk.ui.screens.preview import PreviewScreen
from kiosk.ui.screens.printing import PrintingScreen
from kiosk.ui.screens.rate import RateScreen
from kiosk.ui.screens.take_card import TakeCardScreen
from kiosk.ui.screens.thanks import ThanksScreen
from kiosk.ui.screens.unlock import UnlockScreen

SCREENS: dict[str, type[Screen]] = {
    "idle": HomeScreen,
    "out_of_order": OutOfOrderScreen,
    "identify": IdentifyScreen,
    "choose": ChooseScreen,
    "notice": NoticeScreen,
    "preview": PreviewScreen,
    "printing": PrintingScreen,
    "rate": RateScreen,
    "take_card": TakeCardScreen,
    "thanks": ThanksScreen,
    "unlock": UnlockScreen,
    "maintenance": MaintenanceScreen,
}
