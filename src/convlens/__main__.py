"""``python -m convlens`` runs the command line."""

import sys

from convlens.cli.main import main

sys.exit(main())
