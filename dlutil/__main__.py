"""``python -m dlutil``: the same command line as ``python main.py`` and ``dlutil``."""

from dlutil.cli import console

console()
