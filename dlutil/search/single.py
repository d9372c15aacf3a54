"""``--config``: train one given configuration, as a search of one.

    python main.py -f def.py -d DATA -r RESULT --config '{"lr": 0.001, "dropout": 0.3}' -e -p 'test*.h5'

:class:`ConfigSearch` is a :class:`~dlutil.search.hyperband.HyperbandSearch` whose plan is one
bracket of one trial (``t0000``) trained to ``--epoch`` epochs, and whose sampler returns the given
configuration. Everything else is the search's own code path: the trial's seed (that of trial
``t0000`` of a search with the same ``--seed``, so both train alike), checkpoints, resume, early
stopping, ``--keep-checkpoints``, the report, ``search.csv``/``best.json`` and so ``-e``/``-p``.
``search.json`` records the configuration: re-running with it continues the run, another one is a
change (refused once the trial has finished, unless ``--restart``).

The configuration is checked against the def.py's hyperparameters (:func:`check_config`): its
top-level keys must be those ``get_config()``/``get_space()`` gives, none missing and none
unknown, and each value of the kind (number, text, list, mapping) they draw. Ranges are not
checked: a value outside the space trains as given.
"""
import json
import logging
import os

from dlutil import rng
from dlutil.search import results
from dlutil.search.hyperband import HyperbandSearch
from dlutil.search.sampling import Sampler, json_config
from dlutil.search.schedule import plan

__all__ = ['ConfigSearch', 'read_config', 'check_config', 'check_kind', 'DRAWS']

log = logging.getLogger('dlutil')

DRAWS = 16  # configurations drawn from the def.py to learn its keys and their kinds


def read_config(text):
    """The configuration ``--config`` names: a JSON object, or a JSON file holding one (a
    ``best.json`` of this tool stands for its ``config``)."""
    stripped = text.strip()
    if stripped.startswith('{'):
        where, source = '--config', stripped
    else:
        if not os.path.isfile(text):
            raise FileNotFoundError(f'--config {text}: no such file (give a JSON file or a JSON '
                                    f'object such as \'{{"lr": 0.001}}\')')
        where = f'--config {text}'
        with open(text, encoding='utf-8') as handle:
            source = handle.read()
    try:
        config = json.loads(source)
    except json.JSONDecodeError as error:
        raise ValueError(f'{where}: not valid JSON ({error})') from None
    if not isinstance(config, dict):
        raise ValueError(f'{where}: expected a JSON object of hyperparameters, got '
                         f'{type(config).__name__}')
    if {'trial', 'config', 'reward', 'epoch'} <= set(config) and isinstance(config['config'],
                                                                            dict):
        config = config['config']  # a best.json
    return json_config(config, where)


def _kind(value):
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'text'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'a mapping'
    return 'null'


def check_config(definition, config, seed=0):
    """Refuse a configuration whose keys or kinds of value the def.py's space never gives.

    ``DRAWS`` configurations are drawn (``get_space()`` or ``get_config()``, from a seed of their
    own: the search's RNG is untouched): a key drawn every time is required, one never drawn is
    unknown; a value must be of a kind (number, text, boolean, list, mapping, null) some draw
    had. Raises one ``ValueError`` naming every problem.
    """
    sampler = Sampler(definition, rng.derive_seed(seed, 7), 'random')
    state = rng.get_global_state()
    try:
        draws = [drawn for drawn, _ in sampler.sample(range(DRAWS))]
    finally:
        rng.set_global_state(state)
    always = set.intersection(*(set(d) for d in draws))
    ever = set.union(*(set(d) for d in draws))
    source = 'get_space()' if sampler.space is not None else 'get_config()'
    problems = []
    missing = sorted(always - set(config))
    if missing:
        problems.append(f'missing {", ".join(missing)}')
    unknown = sorted(set(config) - ever)
    if unknown:
        problems.append(f'unknown {", ".join(unknown)}')
    for key in sorted(set(config) & ever):
        kinds = {_kind(d[key]) for d in draws if key in d}
        if _kind(config[key]) not in kinds:
            problems.append(f'{key}={config[key]!r} is {_kind(config[key])}, where '
                            f'{source} gives {" or ".join(sorted(kinds))}')
    if problems:
        raise ValueError(f'--config does not fit {definition.path}\'s {source}: '
                         + '; '.join(problems) + f' (its keys: {", ".join(sorted(ever))})')
    return config


class _Given:
    """A sampler that always returns one configuration."""
    model_based = False

    def __init__(self, config):
        self.config = config

    def sample(self, indices, observations=()):
        return [(self.config, None) for _ in indices]


class ConfigSearch(HyperbandSearch):
    """One configuration (``settings.config``) trained to ``settings.max_epochs`` epochs as trial
    ``t0000``; see the module's docstring."""

    def __init__(self, definition, store, settings, watchers=()):
        assert settings.config is not None, 'ConfigSearch trains settings.config'
        super().__init__(definition, store, settings, watchers)
        # η > R: Hyperband's plan is one bracket of one configuration trained for R epochs
        self.settings = self.settings.replace(eta=settings.max_epochs + 1, trials=None,
                                              sampler='random')
        self.plan = plan(settings.max_epochs, settings.max_epochs + 1)
        assert len(self.plan) == 1 and self.plan[0].sizes == (1,), self.plan
        self.position = {results.trial_id(0): 0}
        self.sampler = _Given(settings.config)

    def _announce(self, executor, done):
        log.info(f'training one configuration (--config) for {self.settings.max_epochs} epochs '
                 f'as trial {results.trial_id(0)}, seed={self.seed}'
                 + (' (done before)' if done else '') + f': {self.settings.config}')


def check_kind(store, config, restart=False):
    """Refuse ``-y`` on a results directory of one ``--config`` run (and say how to go on);
    ``--config`` on a search is a changed setting, which :class:`Settings` judges."""
    path = store.path('search.json')
    recorded = results.read_json(path).get('config') if os.path.exists(path) else None
    if config is None and recorded is not None and not restart:
        raise ValueError(f'{store.root} holds one configuration trained with --config, not a '
                         f'search: give the same --config to continue it, -e/-p alone to use '
                         f'it, --restart to search afresh there, or another --result')
