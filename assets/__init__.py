"""Data only: fonts, locales, the demo catalog, configuration examples, templates."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
