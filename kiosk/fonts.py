"""The CJK font: WenQuanYi Micro Hei renders Chinese in Kivy and embeds in reportlab PDFs.

Noto CJK's first face is Japanese (wrong glyph forms for Chinese) and reportlab cannot embed its
PostScript outlines, so the project uses WenQuanYi (Debian ``fonts-wqy-microhei``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

KNOWN_PATHS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/wqy-microhei/wqy-microhei.ttc"),
)


class FontMissing(RuntimeError):
    pass


def find_cjk_font() -> Path:
    for path in KNOWN_PATHS:
        if path.is_file():
            return path
    if shutil.which("fc-match"):
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "WenQuanYi Micro Hei"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        if out and "wqy" in out.lower() and Path(out).is_file():
            return Path(out)
    raise FontMissing(
        "the Chinese font WenQuanYi Micro Hei is missing: install the Debian package "
        "fonts-wqy-microhei (scripts/bootstrap does)"
    )
