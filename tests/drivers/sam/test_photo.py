"""The pluggable photo decoder: none ships; a licensed one is named in the configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from drivers.sam.cards import encode_base_info
from drivers.sam.photo import PhotoUnavailable, decode_photo, load_decoder
from drivers.sam.protocol import parse_base_info
from flows.errors import ConfigError
from flows.synthetic import DEMO_RESIDENT


def test_without_a_decoder_the_photo_stays_bytes_and_says_so() -> None:
    identity = parse_base_info(encode_base_info(DEMO_RESIDENT))
    assert len(identity.photo) == 1024
    assert load_decoder("") is None
    with pytest.raises(PhotoUnavailable):
        decode_photo(None, identity.photo)


def test_a_named_decoder_is_loaded_and_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    decoder = load_decoder("fake_licensed_decoder:Decoder")
    identity = parse_base_info(encode_base_info(DEMO_RESIDENT))
    assert decode_photo(decoder, identity.photo).startswith(b"BM")
    sys.modules.pop("fake_licensed_decoder", None)


@pytest.mark.parametrize("spec", ["nodecoder", "no_such_module:Decoder", "json:NoSuchClass"])
def test_bad_decoder_names_are_configuration_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        load_decoder(spec)
