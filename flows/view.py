"""What the screen shows, as plain data, and what a resident can pick from a catalog.

The session (:mod:`flows.session`) makes a :class:`View` after every change; the UI binds to it
and never to domain objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.catalog import Catalog, Service
from flows.effects import Offer, Selection


@dataclass(frozen=True, slots=True)
class View:
    """What the screen shows, as plain data. Screens bind to this and never to domain objects."""

    screen: str
    lang: str
    elder: bool
    masked_name: str = ""
    masked_id_number: str = ""
    offers: tuple[Offer, ...] = ()
    selection: Selection | None = None
    preview_ready: bool = False
    warning: bool = False
    seconds_left: float | None = None
    print_ok: bool | None = None
    print_error_key: str = ""
    card_on_reader: bool = False  # as the reader last said: a card lies on it
    prompt_key: str = ""  # what the screen says (spoken on arrival, shown as its title)

    @property
    def services(self) -> tuple[Service, ...]:
        """The single services that can be picked now."""
        return tuple(
            o.selection.services[0]
            for o in self.offers
            if o.available and not o.selection.is_bundle
        )

    @property
    def service(self) -> Service | None:
        sel = self.selection
        return sel.services[0] if sel is not None and len(sel.services) == 1 else None


def selections(catalog: Catalog) -> tuple[Selection, ...]:
    """Every enabled bundle and service of the catalog, as things a resident can pick.

    Bundles come first: "one thing, one visit" is what many residents came for. A matter doable
    on a phone is followed by its 掌上办 guide (a service of kind ``mobile_guide`` that
    ``guides`` it), so that the choose screen offers the guide beside the matter.
    """
    out = []
    for b in catalog.enabled_bundles():
        services = tuple(catalog.service(code) for code in b.services)
        out.append(Selection(b.code, b.name, b.description, b.spoken, services, is_bundle=True))
    enabled = catalog.enabled_services()
    codes = {s.code for s in enabled}
    for s in enabled:
        if s.guides in codes:
            continue  # offered right after the matter it guides, below
        out.append(Selection(s.code, s.name, s.description, s.spoken, (s,)))
        guide = catalog.guide_for(s.code)
        if guide is not None:  # doable on a phone: its 掌上办 guide is offered beside it
            out.append(Selection(guide.code, guide.name, guide.description, guide.spoken, (guide,)))
    return tuple(out)
