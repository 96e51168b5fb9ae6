"""The invented people of the demo, the simulators and the tests.

Every person here is invented; the numbers carry valid check characters but belong to no one.
The demo document service, the GA 467 simulator's cards and the virtual social security card
all present these same people, so they live in the domain, not in one driver.
"""

from __future__ import annotations

import datetime as dt

from flows.identity import id_check_digit
from flows.models import CardType, Identity


def synthetic_id_number(region: str, birth: dt.date, serial: int) -> str:
    """An 18-character number with a valid check character: region, birth date, serial."""
    first17 = f"{region}{birth:%Y%m%d}{serial:03d}"
    return first17 + id_check_digit(first17)


DEMO_RESIDENT = Identity(
    card_type=CardType.RESIDENT,
    name="张秀英",
    id_number=synthetic_id_number("320115", dt.date(1956, 3, 8), 128),
    sex="女",
    nation="汉",
    birth_date=dt.date(1956, 3, 8),
    address="江苏省南京市江宁区秣陵街道示例村委会12号",
    authority="南京市公安局江宁分局",
    valid_from=dt.date(2016, 5, 20),
    valid_to=None,
)
"""An invented resident of 70, with a long-term card: the demo and test card."""


SYNTHETIC_RESIDENTS: tuple[Identity, ...] = (
    DEMO_RESIDENT,
    Identity(
        card_type=CardType.RESIDENT,
        name="李建国",
        id_number=synthetic_id_number("370303", dt.date(1962, 10, 1), 31),
        sex="男",
        nation="汉",
        birth_date=dt.date(1962, 10, 1),
        address="山东省淄博市高新区四宝山街道示例社区 7 号楼 301",
        authority="淄博市公安局高新区分局",
        valid_from=dt.date(2012, 6, 1),
        valid_to=None,
    ),
    Identity(
        card_type=CardType.RESIDENT,
        name="马晓梅",
        id_number=synthetic_id_number("370303", dt.date(1990, 4, 17), 46),
        sex="女",
        nation="回",
        birth_date=dt.date(1990, 4, 17),
        address="山东省淄博市高新区四宝山街道示例村 22 号",
        authority="淄博市公安局高新区分局",
        valid_from=dt.date(2020, 8, 3),
        valid_to=dt.date(2040, 8, 3),
    ),
)
"""The invented residents of the demo dataset (the demo card and two neighbours)."""


DEMO_HMT = Identity(
    card_type=CardType.HMT_PERMIT,
    name="陈嘉欣",
    id_number=synthetic_id_number("810000", dt.date(1988, 7, 21), 64),
    sex="女",
    nation="",  # the permit has no nationality field
    birth_date=dt.date(1988, 7, 21),
    address="江苏省苏州市工业园区示例路88号",
    authority="苏州市公安局",
    valid_from=dt.date(2021, 3, 1),
    valid_to=dt.date(2026, 3, 1),
)
"""An invented Hong Kong resident with a residence permit (card type "J")."""

DEMO_FOREIGN = Identity(
    card_type=CardType.FOREIGN_PERMANENT,
    name="米安娜",
    id_number="CAN320170510012",
    sex="女",
    nation="CAN",
    birth_date=dt.date(1970, 5, 10),
    authority="3200",  # the accepting authority's code, as the card holds it
    valid_from=dt.date(2018, 1, 15),
    valid_to=dt.date(2028, 1, 15),
)
"""An invented permanent resident with a 2017-edition card (card type "I")."""

DEMO_FOREIGN_2023 = Identity(
    card_type=CardType.FOREIGN_PERMANENT,
    name="MILLER ANNA MARIA",
    id_number=synthetic_id_number("932124", dt.date(1980, 6, 15), 12),
    sex="女",
    nation="CAN",
    birth_date=dt.date(1980, 6, 15),
    valid_from=dt.date(2024, 2, 1),
    valid_to=dt.date(2034, 2, 1),
)
"""An invented permanent resident with a 2023-edition card (card type "Y"), no Chinese name."""

SYNTHETIC_CARDS: dict[str, Identity] = {
    "demo": DEMO_RESIDENT,
    "neighbour": SYNTHETIC_RESIDENTS[1],
    "neighbour2": SYNTHETIC_RESIDENTS[2],
    "hmt": DEMO_HMT,
    "foreign": DEMO_FOREIGN,
    "foreign2023": DEMO_FOREIGN_2023,
}
"""Cards by name, for the simulator's control port and ``make run``."""
