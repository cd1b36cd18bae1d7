"""``python -m cli ...`` runs the ``composer`` command."""

import sys

from cli.main import main

sys.exit(main())
