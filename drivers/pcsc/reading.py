"""Reading an identity off a card by its :class:`~drivers.pcsc.profiles.CardProfile`, the field's
way, with fallbacks. No PC/SC here: everything goes through one ``transmit`` function, so the
same code runs against pcscd and against a list of answers in a test.

- SELECT of the application: ``61xx`` (then GET RESPONSE) and ``9000`` with the FCI are both
  success; a card that refuses the case-4 form (``6700``) is asked again without Le.
- SELECT of an EF: the profile's forms in order (P1 = 02 first, as published readers do), the
  next one on an answer from :data:`drivers.pcsc.apdu.SELECT_REFUSED`. The form that worked
  goes first for the next card (a station's cards mostly come from one issuer).
- READ RECORD: ``Le = 00`` first; ``6Cxx`` is re-sent with the length the card gives; ``6700``
  is re-sent with the record's length from the profile. Chained answers
  (``61xx`` after READ RECORD, or after each GET RESPONSE) are gathered by
  :func:`drivers.pcsc.apdu.exchange`.
- Values are stripped of their padding (spaces, ``00``, ``FF``) by the profile's decoders.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from drivers.pcsc import apdu as iso
from drivers.pcsc.profiles import CardProfile, decode
from flows.errors import ProtocolError
from flows.identity import NATIONS, SEX, valid_id_number
from flows.models import Identity

log = logging.getLogger("kiosk.drivers.pcsc")


class CardDataError(ProtocolError):
    translation_key = "error.card.failed"


class ProfileReading:
    """Reads identities by one profile; remembers which SELECT form the cards accept."""

    def __init__(self, profile: CardProfile) -> None:
        self.profile = profile
        self._forms = list(profile.select_forms)
        self._lock = threading.Lock()
        self.last_forms: list[str] = []  # the SELECT form each EF of the last read took

    @property
    def select_order(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._forms)

    def identity(self, transmit: iso.Transmit) -> Identity:
        profile = self.profile
        self.last_forms = []
        self.select_application(transmit)
        values: dict[str, str | dt.date | None] = {}
        current = -1
        for spec in profile.fields:
            if spec.fid != current:
                self.select_ef(transmit, spec.fid)
                current = spec.fid
            if spec.record:
                raw = self.read_record(transmit, spec.record)
            else:
                raw = iso.exchange(transmit, iso.read_binary(spec.offset, spec.length))
                if len(raw) != spec.length:
                    raise iso.MalformedResponse("READ BINARY answered the wrong length")
            try:
                values[spec.field] = decode(raw, spec.encoding)
            except ValueError as err:
                raise iso.MalformedResponse(f"field {spec.field} cannot be decoded") from err
        number = str(values.get("id_number") or "")
        if not valid_id_number(number):
            raise CardDataError("the social security number's check digit is wrong")
        birth = values.get("birth_date")
        valid_to = values.get("valid_to")
        return Identity(
            card_type=profile.card_type,
            name=str(values.get("name") or ""),
            id_number=number,
            sex=SEX.get(str(values.get("sex")), ""),
            nation=NATIONS.get(str(values.get("nation")), ""),
            birth_date=birth if isinstance(birth, dt.date) else None,
            valid_to=valid_to if isinstance(valid_to, dt.date) else None,
        )

    def select_application(self, transmit: iso.Transmit) -> bytes:
        """SELECT by AID; the FCI (from ``9000`` or GET RESPONSE after ``61xx``) is returned."""
        try:
            return iso.exchange(transmit, iso.select_aid(self.profile.aid))
        except iso.WrongLength:
            return iso.exchange(transmit, iso.select_aid(self.profile.aid, le=False))

    def select_ef(self, transmit: iso.Transmit, fid: int) -> None:
        refused: iso.CardError | None = None
        for form in self.select_order:
            try:
                iso.exchange(transmit, self._select_command(form, fid))
            except iso.CardError as err:
                if err.sw not in iso.SELECT_REFUSED:
                    raise
                refused = refused or err  # the first refusal says most (the preferred form)
                continue
            self.last_forms.append(form)
            self._prefer(form)
            return
        assert refused is not None  # a profile has at least one form
        raise refused

    def _select_command(self, form: str, fid: int) -> bytes:
        if form == "in_df":
            return iso.select_file(fid, p1=0x02)
        if form == "by_id":
            return iso.select_file(fid, p1=0x00)
        path = self.profile.df_path + fid.to_bytes(2, "big")
        return iso.select_path(path, from_mf=bool(self.profile.df_path))

    def _prefer(self, form: str) -> None:
        with self._lock:
            if self._forms[0] != form:
                log.info("cards here accept SELECT %s: trying it first from now on", form)
                self._forms.remove(form)
                self._forms.insert(0, form)

    def read_record(self, transmit: iso.Transmit, record: int) -> bytes:
        """The value of ``record`` (a TLV whose tag is the record number)."""
        length = self.profile.record_length(record)
        try:
            data = iso.exchange(transmit, iso.read_record(record, 0))
        except iso.WrongLength:
            if not length:
                raise
            data = iso.exchange(transmit, iso.read_record(record, length))
        items = iso.parse_tlv(data)
        if not items or items[0][0] != record:
            raise iso.MalformedResponse("record tag does not match")
        return items[0][1]
