"""``python -m ppipe_stream.brokers start --kind kafka|tansu`` / ``prepare-kafka``."""

import sys

from .cli import main

sys.exit(main())
