"""Command line of the tool: ``python main.py --help``. Everything behind it lives in :mod:`dlutil`."""
import sys

if __name__ == '__main__':
    from dlutil.cli import main
    sys.exit(main())
