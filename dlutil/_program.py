"""What the two command lines share: the name the user started us by."""
import os
import sys


def program_name(argv0=None):
    """How the user started us, for usage lines and hints: main.py, dlutil or python -m dlutil."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if name == '__main__.py':
        return 'python -m dlutil'
    return 'dlutil' if name == 'dlutil' else f'python {name or "main.py"}'
