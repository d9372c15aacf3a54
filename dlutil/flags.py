"""Helpers for the command lines' flags.

- Old spellings of renamed flags stay accepted, hidden from ``--help``, with a one-line notice
  naming the new spelling, so that scripts written for an older version run on
  (:func:`add_renamed`).
- Counts that must be at least 1 are refused as they are parsed, under the name the user typed
  (:func:`count`).
"""
import argparse
import sys


def count(text):
    """An ``int`` of at least 1, as an argparse ``type``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a whole number, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


class _Renamed(argparse.Action):
    """Stores the value as the new flag does, after saying the new name on stderr."""

    def __init__(self, option_strings, dest, new=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f'note: {option_string} is now called {self.new}; the old name still works',
              file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_renamed(parser, old, new, dest, type=None):
    """Accept ``old`` as a hidden alias of the flag ``new`` (which stores into ``dest``).

    Parameters
    ----------
    parser: argparse.ArgumentParser or argument group
    old, new: str
        The old and the new spelling, e.g. ``'--vep-top'``, ``'--vep-rows'``.
    dest: str
        The attribute both store into.
    type: callable or None
        The value's type, as the new flag has it.
    """
    parser.add_argument(old, dest=dest, type=type, action=_Renamed, new=new,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
