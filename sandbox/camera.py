"""A camera for tests: a YUV4MPEG2 file of four coloured quadrants, and the check of a picture.

Both ends of a video call read the same file format as a camera: the kiosk's aiortc player takes
a ``.y4m`` as ``[call] camera`` (FFmpeg's ``yuv4mpegpipe`` demuxer, looped), and Chromium takes
it as its fake capture device (``--use-file-for-fake-video-capture``). Four quadrants of distinct
colours survive a video codec's blur and tell the picture is whole, the right way up and not
mirrored; :func:`quadrants` measures a received RGB picture's four mean colours to compare.
"""

from __future__ import annotations

from pathlib import Path

RGB = tuple[int, int, int]

STAFF_COLOURS: tuple[RGB, RGB, RGB, RGB] = (
    (220, 40, 40),
    (40, 170, 60),
    (40, 80, 220),
    (230, 210, 40),
)
"""Top left, top right, bottom left, bottom right: the technician's camera."""
KIOSK_COLOURS: tuple[RGB, RGB, RGB, RGB] = (
    (240, 140, 20),
    (120, 40, 160),
    (20, 170, 170),
    (235, 235, 235),
)
"""The station's camera."""


def _yuv(rgb: RGB) -> tuple[int, int, int]:
    """BT.601 limited range, as FFmpeg and Chromium read a plain ``C420`` file."""
    r, g, b = (c / 255 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(u), round(v)


def quadrants_y4m(
    path: Path,
    colours: tuple[RGB, RGB, RGB, RGB],
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 15,
    seconds: float = 1.0,
) -> Path:
    """Write ``seconds`` of a still picture of four quadrants (a whole number of frames; short,
    so that a test's call plays it round more than once)."""
    assert width % 4 == 0 and height % 4 == 0
    planes = []
    for plane in range(3):
        w, h = (width, height) if plane == 0 else (width // 2, height // 2)
        rows = []
        for half in (0, 1):
            left, right = (_yuv(c)[plane] for c in colours[2 * half : 2 * half + 2])
            row = bytes([left]) * (w // 2) + bytes([right]) * (w // 2)
            rows.append(row * (h // 2))
        planes.append(b"".join(rows))
    picture = b"FRAME\n" + b"".join(planes)
    frames = max(1, round(fps * seconds))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode("ascii"))
        for _ in range(frames):
            out.write(picture)
    return path


def quadrants(rgb: bytes, width: int, height: int) -> list[RGB]:
    """The mean colour of each quadrant's middle half (away from the edges the codec blurs),
    in the order of ``STAFF_COLOURS``."""
    assert len(rgb) == width * height * 3, (len(rgb), width, height)
    found: list[RGB] = []
    for top in (0, height // 2):
        for left in (0, width // 2):
            sums, n = [0, 0, 0], 0
            for y in range(top + height // 8, top + height * 3 // 8):
                row = y * width * 3
                for x in range(left + width // 8, left + width * 3 // 8, 2):
                    i = row + x * 3
                    sums[0] += rgb[i]
                    sums[1] += rgb[i + 1]
                    sums[2] += rgb[i + 2]
                    n += 1
            found.append((sums[0] // n, sums[1] // n, sums[2] // n))
    return found


def matches(found: list[RGB], expected: tuple[RGB, ...], tolerance: int = 40) -> bool:
    """Every quadrant within ``tolerance`` of its colour in every channel."""
    return len(found) == len(expected) and all(
        abs(a - b) <= tolerance
        for f, e in zip(found, expected, strict=True)
        for a, b in zip(f, e, strict=True)
    )
