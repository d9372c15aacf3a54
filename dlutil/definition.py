"""Loading a user's ``def.py`` and checking it against the contract before any work starts.

The contract (see README, "Writing def.py")::

    get_config() -> dict                          one random configuration (-y)
    get_space() -> hyperopt space                 instead of get_config (needed by TPE)
    get_train_generator(data_dir, batch_size)     a generator, or (train, val)    (-y)
    get_val_generator(data_dir)                   unless the above returns a pair (-y)
    get_test_generator(data_dir)                  (-e)
    get_pred_generator(pred_path)                 (-p)
    save_prediction(pred_path, Y)                 optional: replaces the .npy files (-p)
    class Model(base_model.BaseModel)             with init_model, train_metrics,
                                                  eval_metrics, get_hyperband_reward
"""
import importlib.util
import inspect
import os
import sys
import traceback

from base_model import BaseModel
from dlutil.simulation import SimulationError

NEEDED = {
    'hyper': ('Model', 'get_config', 'get_train_generator'),  # get_space may stand for get_config
    'eval': ('Model', 'get_test_generator'),
    'predict': ('Model', 'get_pred_generator'),
}
MODEL_METHODS = ('init_model', 'train_metrics', 'eval_metrics', 'get_hyperband_reward')


class DefinitionError(ValueError):
    """The def.py breaks the contract, or one of its functions failed."""


def _user_line(path, tb):
    """The last line of ``path`` in a traceback, as ``'path, line N'``, or just ``path``."""
    frames = [frame for frame in traceback.extract_tb(tb)
              if os.path.abspath(frame.filename) == os.path.abspath(path)]
    return f'{path}, line {frames[-1].lineno}' if frames else path


def load_module(path):
    """Import ``path`` as a module named ``user_def``; errors name the file and line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'--model {path}: no such file')
    folder = os.path.dirname(os.path.abspath(path))
    if folder not in sys.path:  # def.py may import helpers that lie beside it
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location('user_def', path)
    if spec is None:
        raise DefinitionError(f'--model {path}: not a Python file')
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise DefinitionError(f'{path}, line {error.lineno}: SyntaxError: {error.msg}') from error
    except Exception as error:
        raise DefinitionError(f'{_user_line(path, error.__traceback__)}: {path} does not import: '
                              f'{type(error).__name__}: {error}') from error
    return module


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
        flags = {'hyper': '-y', 'eval': '-e', 'predict': '-p'}
        problems, missing = [], []
        for mode in modes:
            for name in NEEDED[mode]:
                if name == 'get_config' and hasattr(self.module, 'get_space'):
                    continue
                if not hasattr(self.module, name) and name not in missing:
                    missing.append(name)
        if missing:
            used = ' '.join(flags[m] for m in modes)
            problems.append(f'missing {", ".join(missing)} (needed for {used})')
        for name in ('get_config', 'get_space', 'get_train_generator', 'get_val_generator',
                     'get_test_generator', 'get_pred_generator', 'save_prediction'):
            if hasattr(self.module, name) and not callable(getattr(self.module, name)):
                problems.append(f'{name} must be a function')
        model = getattr(self.module, 'Model', None)
        if model is not None:
            if not (inspect.isclass(model) and issubclass(model, BaseModel)):
                problems.append('Model must be a class that extends base_model.BaseModel '
                                '(or ClassificationModel / RegressionModel)')
            else:
                lacking = [name for name in MODEL_METHODS
                           if getattr(model, name) is getattr(BaseModel, name)]
                if lacking:
                    problems.append(f'Model does not implement {", ".join(lacking)}')
        if problems:
            raise DefinitionError(f'{self.path} does not follow the def.py contract: '
                                  + '; '.join(problems)
                                  + '. See `python main.py --help` for the contract.')

    @property
    def Model(self):
        return self.module.Model

    def has(self, name):
        return callable(getattr(self.module, name, None))

    def call(self, name, *args):
        """Call a def.py function; an exception becomes an error naming it and its line."""
        try:
            return getattr(self.module, name)(*args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:
            shown = ', '.join(repr(a) for a in args)
            message = (f'{_user_line(self.path, error.__traceback__)}: {name}({shown}) failed: '
                       f'{type(error).__name__}: {error}')
            if isinstance(error, FileNotFoundError):
                raise FileNotFoundError(message) from error
            if isinstance(error, SimulationError):  # the simulator, not a trial: stop the search
                raise SimulationError(message) from error
            raise DefinitionError(message) from error

    def train_val_generators(self, data_dir, batch_size):
        """``(train, val)`` from ``get_train_generator`` and, if needed, ``get_val_generator``."""
        made = self.call('get_train_generator', data_dir, batch_size)
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


def _check_generator(path, name, generator):
    if not hasattr(generator, '__iter__'):
        raise DefinitionError(f'{path}: the {name} generator is a {type(generator).__name__}, '
                              f'not an iterable batch generator (e.g. '
                              f'batch_generator.MatrixBatchGenerator)')
