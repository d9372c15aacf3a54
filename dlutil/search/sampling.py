"""Where configurations come from: ``get_config()``, a hyperopt ``get_space()``, or TPE.

Every configuration is drawn from a seed derived from ``(search seed, trial index)``, so a search
samples the same configurations whatever order its trials run in. With a hyperopt space, each
trial also keeps its point in hyperopt's own form (``trials/<id>/space_point.json``: label →
``[value]``, ``[]`` for inactive conditional labels), which is what TPE learns from.

TPE (``--sampler tpe``) follows BOHB (Falkner et al., ICML 2018): a bracket's configurations are
proposed by hyperopt's TPE fitted on the rewards observed at the largest epoch budget with enough
results, with a third of them still drawn at random; until such a budget exists, all are random.
As in BOHB, with d hyperparameters a budget needs 2(d + 1) results, and the "good" density models
the best 15 % of them, at least d + 1 (hyperopt's own default, the best ⌈0.25·√n⌉, models a
single point at these sizes and then explores the edges of the space).
"""
import json
import math

import numpy as np

from dlutil import rng

RANDOM_FRACTION = 1 / 3
TOP_FRACTION = 0.15


def plain(value):
    """numpy scalars, arrays and tuples → JSON types (configurations are plain data)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def json_config(config, where):
    """Check that ``config`` is a JSON-serialisable dict and return its JSON round trip.

    NaN and infinities are refused by name: JSON has no spelling for them.
    """
    if not isinstance(config, dict):
        raise TypeError(f'{where} must return a dict, got {type(config).__name__}')
    config = plain(config)
    bad = _not_finite(config)
    if bad:
        key, value = bad
        raise ValueError(f'{where} returned {value} at {key}: a configuration must hold '
                         f'finite numbers (it is saved as JSON, which has no NaN or infinity)')
    try:
        return json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f'{where} must return a JSON-serialisable dict ({error})') from None


def _not_finite(value, key=''):
    """``(key path, value)`` of the first NaN or infinity in ``value``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    items = (value.items() if isinstance(value, dict) else
             enumerate(value) if isinstance(value, list) else ())
    for name, item in items:
        found = _not_finite(item, f'{key}[{name!r}]')
        if found:
            return found
    return None


class Sampler:
    """Draws the configuration of trial ``index``; ``observations`` feed model-based samplers.

    Parameters
    ----------
    definition: definition.Definition
    seed: int
        The search seed.
    method: str
        ``'random'`` or ``'tpe'``.
    """

    def __init__(self, definition, seed, method='random'):
        self.definition, self.seed, self.method = definition, seed, method
        self.space = definition.call('get_space') if definition.has('get_space') else None
        if method == 'tpe' and self.space is None:
            raise ValueError(f'--sampler tpe needs a hyperopt search space: define get_space() '
                             f'in {definition.path}')
        if self.space is not None:
            from hyperopt import base
            try:
                self.domain = base.Domain(lambda point: 0.0, self.space)
            except Exception as error:
                raise ValueError(f'{definition.path}: get_space() did not return a hyperopt '
                                 f'space ({type(error).__name__}: {error})') from None
            self.labels = sorted(self.domain.params)

    @property
    def min_points(self):
        """Results a budget needs before TPE fits it: 2(d + 1), as in BOHB."""
        return 2 * (len(self.labels) + 1)

    @property
    def model_based(self):
        return self.method == 'tpe'

    def sample(self, indices, observations=()):
        """Configurations for trial ``indices``: a list of ``(config, point or None)``.

        ``observations`` are ``(point, epochs, reward)`` of finished rung evaluations.
        """
        if self.space is None:
            return [(self._from_get_config(i), None) for i in indices]
        model = self._tpe_model(observations) if self.model_based else None
        out = []
        for i in indices:
            seed = rng.derive_seed(self.seed, 0, i)
            use_model = model is not None and np.random.default_rng(seed).random() >= \
                RANDOM_FRACTION
            point = self._tpe_point(model, i, seed) if use_model else self._random_point(i, seed)
            out.append((self.config_of(point), point))
        return out

    def _from_get_config(self, index):
        rng.seed_everything(rng.derive_seed(self.seed, 0, index))
        return json_config(self.definition.call('get_config'),
                           f'{self.definition.path}: get_config()')

    def config_of(self, point):
        from hyperopt import space_eval
        chosen = {label: values[0] for label, values in point.items() if values}
        return json_config(space_eval(self.space, chosen), f'{self.definition.path}: get_space()')

    def _random_point(self, index, seed):
        from hyperopt import Trials, rand
        doc = rand.suggest([index], self.domain, Trials(), seed % (2 ** 32))[0]
        return plain(doc['misc']['vals'])

    def _tpe_point(self, model, index, seed):
        from hyperopt import tpe
        trials, gamma = model
        doc = tpe.suggest([index], self.domain, trials, seed % (2 ** 32), n_startup_jobs=0,
                          gamma=gamma)[0]
        return plain(doc['misc']['vals'])

    def _tpe_model(self, observations):
        """``(Trials, gamma)`` of the largest budget with enough results, or None.

        hyperopt models the best ⌈gamma·√n⌉ observations as "good"; gamma is chosen so that
        these are the best 15 %, at least d + 1, and never all of them.
        """
        from hyperopt import JOB_STATE_DONE, STATUS_OK, Trials
        by_budget = {}
        for point, epochs, reward in observations:
            if point is not None and reward is not None and np.isfinite(reward):
                by_budget.setdefault(epochs, []).append((point, reward))
        enough = [e for e, rows in by_budget.items() if len(rows) >= self.min_points]
        if not enough:
            return None
        chosen = by_budget[max(enough)]
        n = len(chosen)
        good = min(n - 1, max(len(self.labels) + 1, int(np.ceil(TOP_FRACTION * n))))
        gamma = (good - 0.5) / np.sqrt(n)  # ⌈gamma·√n⌉ = good
        trials = Trials()
        docs = []
        # ids far from trial indices, which tpe.suggest uses for the proposals
        for tid, (point, reward) in enumerate(chosen, start=10 ** 9):
            misc = {'tid': tid, 'cmd': self.domain.cmd, 'workdir': None,
                    'idxs': {label: [tid] if point.get(label) else [] for label in self.labels},
                    'vals': {label: point.get(label, []) for label in self.labels}}
            docs.extend(trials.new_trial_docs([tid], [None],
                                              [{'status': STATUS_OK, 'loss': -reward}], [misc]))
        for doc in docs:
            doc['state'] = JOB_STATE_DONE
        trials.insert_trial_docs(docs)
        trials.refresh()
        return trials, gamma
