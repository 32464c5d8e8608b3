"""``python -m simkit``: the command line (:func:`simkit.cli.main`)."""

import sys

from .cli import main

__all__: list[str] = []

sys.exit(main())
