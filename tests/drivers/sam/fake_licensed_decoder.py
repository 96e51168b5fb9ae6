"""Stands in for a licensed WLT decoder in tests: the real ones cannot ship with the project."""


class Decoder:
    def decode(self, wlt: bytes) -> bytes:
        return b"BM" + len(wlt).to_bytes(4, "little")  # a recognisable "image"
