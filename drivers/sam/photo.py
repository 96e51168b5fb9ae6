"""The pluggable photo decoder: a licensed module named ``package.module:Class`` in the config.

The card keeps its photo encrypted (1024 bytes, "WLT"); only decoders licensed by the card
authority can turn it into an image, so the project ships none and keeps the bytes. A station
that holds a licence installs its decoder and names it; :func:`load_decoder` imports it and checks
it has the :class:`flows.ports.PhotoDecoder` shape.
"""

from __future__ import annotations

import importlib

from flows.errors import ConfigError, DeviceError
from flows.ports import PhotoDecoder


class PhotoUnavailable(DeviceError):
    translation_key = "error.sam.photo_unavailable"


def load_decoder(spec: str) -> PhotoDecoder | None:
    """``""`` gives None (no decoder); ``module:Class`` imports and instantiates it."""
    if not spec:
        return None
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"photo decoder {spec!r}: expected package.module:Class")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"photo decoder {spec!r} cannot be imported: {err}") from err
    decoder = factory()
    if not callable(getattr(decoder, "decode", None)):
        raise ConfigError(f"photo decoder {spec!r} has no decode(wlt) method")
    return decoder  # type: ignore[no-any-return]


def decode_photo(decoder: PhotoDecoder | None, wlt: bytes) -> bytes:
    if decoder is None:
        raise PhotoUnavailable("no licensed photo decoder is installed")
    if len(wlt) != 1024:
        raise PhotoUnavailable("the card's photo is not 1024 bytes")
    return decoder.decode(wlt)
