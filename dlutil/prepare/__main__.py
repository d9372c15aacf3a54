"""``python -m dlutil.prepare``: the data-preparation command (installed as ``dlutil-prepare``)."""
import sys

from dlutil.prepare.cli import main

sys.exit(main())
