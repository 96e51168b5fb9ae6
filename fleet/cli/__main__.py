"""``python -m fleet.cli``: the same as the ``fleet`` command."""

from __future__ import annotations

import sys

from fleet.cli import main

sys.exit(main())
