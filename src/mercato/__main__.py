"""``python -m mercato``: the same as the ``mercato`` command."""

import sys

from mercato.cli import main

sys.exit(main())
