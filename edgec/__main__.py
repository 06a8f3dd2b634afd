"""`python -m edgec` runs the command line."""

import sys

from edgec.cli import main

sys.exit(main())
