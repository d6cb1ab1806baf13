"""``python -m lbprov`` is the ``lbprov`` command."""

import sys

from lbprov.cli import main

sys.exit(main())
