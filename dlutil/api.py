"""The command line from Python, for notebooks: search, train, evaluate, predict, export.

    from dlutil import api
    best = api.search('def.py', 'data', 'results', epoch=9, seed=1)      # -y
    best = api.train('def.py', {'lr': 1e-3}, 'data', 'one', epoch=9)     # --config
    scores = api.evaluate('results')                                     # -e
    arrays = api.predict('results', 'test*.h5')                          # -p
    api.export('results', 'model_dir')                                   # dlutil export

Each function turns its arguments into the command line's (``epoch=9`` is ``--epoch 9``,
``keep_checkpoints='all'`` is ``--keep-checkpoints all``, ``cpu=True`` is ``--cpu``), parses and
checks them with the command line's own parser (:func:`dlutil.cli.parse`) and runs them with
:func:`dlutil.cli.execute`: there is no second implementation. A mistake raises ``ValueError``
(or the command's own exception) instead of ending the interpreter. ``definition`` is a def.py
path or the module imported from one (its file is loaded afresh, as the command line loads it).
``evaluate``, ``predict`` and ``export`` take the def.py and data folder that the results
directory's ``search.json`` records when they are left out.

Like the command line, these set torch's CPU thread count (``--threads``) in this process.
"""
import argparse
import json
import os

import numpy as np

from dlutil import cli
from dlutil import export as export_command
from dlutil.predictions import prediction_inputs, prediction_names
from dlutil.search import results, settings

__all__ = ['search', 'train', 'evaluate', 'predict', 'export', 'command_line']


class _Parser:
    """The command line's parser, raising ``ValueError`` where it would exit."""

    def __init__(self):
        self.parser = cli.build_parser()
        self.parser.error = self._error
        self.actions = {}
        for action in self.parser._actions:  # the documented flags, not the old spellings
            if action.option_strings and action.dest != 'help' and \
                    action.help != argparse.SUPPRESS:
                self.actions.setdefault(action.dest, action)

    @staticmethod
    def _error(message):
        raise ValueError(message)

    def flags(self, options):
        """``{'batch_size': 64, 'cpu': True}`` → ``['--batch-size', '64', '--cpu']``."""
        argv = []
        for name, value in options.items():
            action = self.actions.get(name)
            if action is None:
                raise TypeError(f'unknown option {name}=; the options are the command line\'s '
                                f'flags: {", ".join(sorted(self.actions))}')
            flag = max(action.option_strings, key=len)
            if value is None or value is False:
                continue
            if action.nargs == 0:  # store_true
                argv.append(flag)
            elif value is True and action.nargs == '?':  # --freeze, --ray alone
                argv.append(flag)
            else:
                for item in (value if isinstance(value, (list, tuple)) else [value]):
                    argv += [flag, json.dumps(item) if isinstance(item, dict) else str(item)]
        return argv


def _def_path(definition):
    if isinstance(definition, (str, os.PathLike)):
        return os.fspath(definition)
    path = getattr(definition, '__file__', None)
    if not path:
        raise TypeError(f'definition must be a def.py path or a module imported from a file, '
                        f'got {definition!r}')
    return path


def _argv(parser, definition, data, result, options):
    return ['-f', _def_path(definition), '-d', os.fspath(data), '-r', os.fspath(result),
            *parser.flags(options)]


def command_line(definition, data, result, **options):
    """The command line's arguments that these stand for (what the functions run)."""
    return _argv(_Parser(), definition, data, result, options)


def _run(definition, data, result, options):
    parser = _Parser()
    argv = _argv(parser, definition, data, result, options)
    args = cli.parse(parser.parser, argv)
    if cli.execute(args):  # an output failed after the others ran (runner.run_modes)
        raise RuntimeError(f'{" ".join(map(str, argv))}: an output failed (the error line above '
                           f'names it); the others were written')
    return results.ResultStore(result)


def _recorded(result, definition, data):
    """The def.py and data folder given, else those ``search.json`` of ``result`` records."""
    saved = settings.read(results.ResultStore(result))
    if saved is None and (definition is None or data is None):
        raise FileNotFoundError(f'{result}: no search.json; give definition= and data=')
    return (definition if definition is not None else saved['model'],
            data if data is not None else saved['data']['path'])


def search(definition, data, result, **options):
    """Run (or continue) a Hyperband search (``-y``); returns ``best.json`` as a dict.

    ``options`` are the command line's flags by their Python names: ``epoch``, ``eta``,
    ``batch_size``, ``seed``, ``trials``, ``sampler``, ``workers``, ``threads``, ``init_from``,
    ``eval=True``, ``predict='test*.h5'`` …
    """
    return _run(definition, data, result, {'hyper': True, **options}).read_best()


def train(definition, config, data, result, **options):
    """Train one configuration (``--config``): a dict, or a JSON file's path; returns
    ``best.json`` as a dict. ``epoch=`` is the number of epochs."""
    config = json.dumps(config) if isinstance(config, dict) else os.fspath(config)
    return _run(definition, data, result, {'config': config, **options}).read_best()


def evaluate(result, definition=None, data=None, **options):
    """Test the best model on ``get_test_generator(data)`` (``-e``); returns the metrics."""
    definition, data = _recorded(result, definition, data)
    store = _run(definition, data, result, {'eval': True, **options})
    return results.read_json(store.path('test_result.json'))


def predict(result, files, definition=None, data=None, **options):
    """Predict the files matching ``files`` (a glob relative to ``data``, or a list of them;
    ``-p``); returns ``{input path: array}`` (``{key: array}`` for dict outputs; None where the
    def.py's ``save_prediction`` wrote them its own way)."""
    definition, data = _recorded(result, definition, data)
    store = _run(definition, data, result, {'predict': files, **options})
    paths = prediction_inputs(data, files)
    out = {}
    for path, name in zip(paths, prediction_names(paths, data)):
        stem = store.path('predictions', name)
        if os.path.exists(stem + '.npy'):
            out[path] = np.load(stem + '.npy')
        else:
            folder = os.path.dirname(stem)
            keys = sorted(f[len(os.path.basename(stem)) + 1:-4] for f in os.listdir(folder)
                          if f.startswith(os.path.basename(stem) + '.') and f.endswith('.npy'))
            out[path] = {key: np.load(f'{stem}.{key}.npy') for key in keys} or None
    return out


def export(result, out_dir, definition=None, data=None, force=False):
    """Write the best model as a folder that loads with torch alone (``dlutil export``);
    returns ``model.json`` as a dict."""
    cli.setup_logging(False)
    return export_command.export(os.fspath(result), os.fspath(out_dir),
                                 definition and _def_path(definition),
                                 data and os.fspath(data), force=force)
