"""``python -m ppipe_stream`` is the ``ppipe`` command."""

import sys

from .cli import main

sys.exit(main())
