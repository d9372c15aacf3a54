"""Command line of the tool: ``python main.py --help``. Everything behind it lives in :mod:`dlutil`."""
if __name__ == '__main__':
    from dlutil.cli import console
    console()
