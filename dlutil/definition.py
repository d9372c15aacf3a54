"""Loading a user's ``def.py`` and checking it against the contract before any work starts.

What a def.py must hold is :mod:`dlutil.contract` (shown by ``--help``); every problem is
reported at once, by name.
"""
import difflib
import importlib.util
import inspect
import logging
import os
import sys
import traceback

from dlutil.training.model import BaseModel
from dlutil._program import program_name
from dlutil.contract import FLAGS, FUNCTIONS, MODEL_METHODS, NEEDED
from dlutil.errors import SimulationError
from dlutil.errors import DefinitionError  # noqa: F401 (re-exported)
from dlutil.extras import MissingExtraError

log = logging.getLogger('dlutil')


def user_line(path, tb):
    """The last line of ``path`` in a traceback, as ``'path, line N'``, or just ``path``."""
    frames = [frame for frame in traceback.extract_tb(tb)
              if os.path.abspath(frame.filename) == os.path.abspath(path)]
    return f'{path}, line {frames[-1].lineno}' if frames else path


MODULE_NAME = 'user_def'


def load_module(path):
    """Import ``path`` as the module ``user_def``; errors name the file and line.

    While the def.py is imported, its folder comes first on ``sys.path``, as when Python runs a
    script: ``from models import my_network`` gets a ``models.py`` beside it (the zoo is always
    ``dlutil.models``), and so does any other neighbour. Afterwards the folder stays at the END
    of ``sys.path`` (for imports inside its functions), so that nothing the tool imports later
    can be replaced by a file beside the def.py; the tool itself never imports a generic
    top-level name. The module is registered in ``sys.modules`` (as the import system would), so
    ``@dataclass`` and pickling of its classes work; worker processes load it under the same name.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'--model {path}: no such file')
    folder = os.path.dirname(os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if spec is None:
        raise DefinitionError(f'--model {path}: not a Python file')
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(MODULE_NAME)
    sys.modules[MODULE_NAME] = module
    _forget_zoo_beside(folder)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as error:
        if previous is None:
            sys.modules.pop(MODULE_NAME, None)
        else:
            sys.modules[MODULE_NAME] = previous
        if isinstance(error, SyntaxError):
            raise DefinitionError(f'{path}, line {error.lineno}: SyntaxError: '
                                  f'{error.msg}') from error
        if not isinstance(error, Exception) or isinstance(error, MissingExtraError):
            raise  # an optional package the def.py needs: the message says how to install it
        raise DefinitionError(f'{user_line(path, error.__traceback__)}: {path} does not import: '
                              f'{type(error).__name__}: {error}') from error
    finally:
        sys.path.remove(folder)
        if folder not in sys.path:
            sys.path.append(folder)
    return module


def _forget_zoo_beside(folder):
    """Let a ``models.py`` (or ``models/``) beside the def.py be the one its ``import models``
    gets, even where this process imported the zoo's facade package of that name already."""
    if not (os.path.isfile(os.path.join(folder, 'models.py'))
            or os.path.isfile(os.path.join(folder, 'models', '__init__.py'))):
        return
    loaded = getattr(sys.modules.get('models'), '__file__', None)
    if loaded and not os.path.abspath(loaded).startswith(folder + os.sep):
        for name in [n for n in sys.modules if n == 'models' or n.startswith('models.')]:
            del sys.modules[name]


CONTRACT_NAMES = ('Model', 'get_config', 'get_space', 'get_train_generator',
                  'get_val_generator', 'get_test_generator', 'get_pred_generator',
                  'save_prediction', 'ALPHABET', 'CLASS_NAMES')


def did_you_mean(missing, defined):
    """`` (did you mean get_tset_generator for get_test_generator?)`` for misspelt names, or ''.

    Parameters
    ----------
    missing: list of str
        Contract names def.py lacks.
    defined: iterable of str
        The names def.py defines; those of the contract itself are never suggested.
    """
    candidates = [name for name in defined
                  if not name.startswith('__') and name not in CONTRACT_NAMES]
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.8)
        if close:
            hints.append(f'{close[0]} for {name}')
    return f' (did you mean {"; ".join(hints)}?)' if hints else ''


def exit_error(path, exit):
    """The :class:`DefinitionError` for a ``sys.exit()`` (``SystemExit`` ``exit``) that the
    def.py at ``path`` called: a def.py must not end the program, least of all with status 0."""
    return DefinitionError(f'{user_line(path, exit.__traceback__)}: sys.exit({exit.code!r}) '
                           f'was called; a def.py must not end the program (raise an exception '
                           f'to report a problem)')


class Definition:
    """A loaded def.py: its functions and ``Model``, called with errors that name them."""

    def __init__(self, path, module):
        self.path, self.module = path, module

    @classmethod
    def load(cls, path, hyper=False, eval=False, predict=False):
        """Import ``path`` and check every piece the chosen modes need, reporting all at once."""
        module = load_module(path)
        definition = cls(path, module)
        definition.check(hyper=hyper, eval=eval, predict=predict)
        return definition

    def check(self, hyper=False, eval=False, predict=False):
        modes = [mode for mode, on in (('hyper', hyper), ('eval', eval), ('predict', predict))
                 if on]
        problems, missing = [], []
        for mode in modes:
            for name in NEEDED[mode]:
                if name == 'get_config' and hasattr(self.module, 'get_space'):
                    continue
                if not hasattr(self.module, name) and name not in missing:
                    missing.append(name)
        if missing:
            used = ' '.join(FLAGS[m] for m in modes)
            problems.append(f'missing {", ".join(missing)} (needed for {used})'
                            + did_you_mean(missing, vars(self.module)))
        for name in FUNCTIONS:
            if hasattr(self.module, name) and not callable(getattr(self.module, name)):
                problems.append(f'{name} must be a function')
        model = getattr(self.module, 'Model', None)
        if model is not None:
            if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                problems.append('Model must be a class that extends base_model.BaseModel '
                                '(or ClassificationModel / RegressionModel)')
            else:
                # the library's own classes leave init_model to the user (they have no network)
                lacking = [name for name in MODEL_METHODS
                           if _defined_in(model, name).__module__.startswith('dlutil.training.')
                           and (name == 'init_model'
                                or getattr(model, name) is getattr(BaseModel, name))]
                if lacking:
                    problems.append(f'Model does not implement {", ".join(lacking)}')
        if not problems:  # a misspelt name that this run does not need yet: say so now
            for name in CONTRACT_NAMES:
                hint = '' if hasattr(self.module, name) else did_you_mean([name],
                                                                         vars(self.module))
                if hint:
                    log.warning(f'{self.path}: no {name}{hint}')
        if problems:
            raise DefinitionError(f'{self.path} does not follow the def.py contract: '
                                  + '; '.join(problems)
                                  + f'. See `{program_name()} --help` for the contract.')

    @property
    def Model(self):
        return self.module.Model

    def has(self, name):
        return callable(getattr(self.module, name, None))

    def output_names(self, model=None):
        """The names of the model's outputs: def.py's ``CLASS_NAMES``, else the model's
        ``task_names`` (a ``MultiLabelModel`` attribute), else None."""
        return getattr(self.module, 'CLASS_NAMES', None) or getattr(model, 'task_names', None)

    def call(self, name, *args):
        """Call a def.py function; an exception becomes an error naming it and its line."""
        try:
            return getattr(self.module, name)(*args)
        except (KeyboardInterrupt, SystemExit, MissingExtraError):
            raise
        except Exception as error:
            shown = ', '.join(repr(a) for a in args)
            message = (f'{user_line(self.path, error.__traceback__)}: {name}({shown}) failed: '
                       f'{type(error).__name__}: {error}')
            if isinstance(error, FileNotFoundError):
                raise FileNotFoundError(message) from error
            if isinstance(error, SimulationError):  # the simulator, not a trial: stop the search
                raise SimulationError(message) from error
            raise DefinitionError(message) from error

    def train_val_generators(self, data_dir, batch_size):
        """``(train, val)`` from ``get_train_generator`` and, if needed, ``get_val_generator``."""
        made = self.call('get_train_generator', data_dir, batch_size)
        if isinstance(made, list) and len(made) == 2 and not any(
                isinstance(g, (tuple, list, dict)) or hasattr(g, 'shape') for g in made):
            made = tuple(made)  # [train, val]; a list of two (x, y) batches stays a generator
        if isinstance(made, tuple):
            if len(made) != 2:
                raise DefinitionError(f'{self.path}: get_train_generator returned a tuple of '
                                      f'{len(made)}; expected a generator or (train, val)')
            train, val = made
        else:
            if not self.has('get_val_generator'):
                raise DefinitionError(f'{self.path}: get_train_generator returned one generator, '
                                      f'so def.py must define get_val_generator(data_dir) (or '
                                      f'return (train, val) from get_train_generator)')
            train, val = made, self.call('get_val_generator', data_dir)
        for name, generator in (('training', train), ('validation', val)):
            _check_generator(self.path, name, generator)
        return train, val

    def generator(self, name, *args):
        generator = self.call(name, *args)
        _check_generator(self.path, name, generator)
        return generator


def _defined_in(cls, name):
    """The class in ``cls``'s MRO that defines ``name``."""
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def _check_generator(path, name, generator):
    if not hasattr(generator, '__iter__'):
        raise DefinitionError(f'{path}: the {name} generator is a {type(generator).__name__}, '
                              f'not an iterable batch generator (e.g. '
                              f'batch_generator.MatrixBatchGenerator)')
