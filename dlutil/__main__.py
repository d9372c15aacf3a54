"""``python -m dlutil``: the same command line as ``python main.py`` and ``dlutil``."""
import sys

from dlutil.cli import main

sys.exit(main())
