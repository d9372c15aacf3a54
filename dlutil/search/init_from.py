"""``--init-from``, ``--init-layers``, ``--freeze``: the first weights of every trial.

``--init-from`` takes a ``.pt`` file (a trial's ``best.pt`` or ``last.pt``, a ``state_dict``) or a
results directory, which stands for its best trial's ``best.pt``. The settings are recorded in
``search.json``: a continued search that leaves the flags out takes them from there (one line says
so), and other ones are a change of settings. Loading and freezing themselves are
:mod:`dlutil.training.initial_weights`.
"""
import logging
import os

from dlutil.errors import WeightInitError
from dlutil.search import results
from dlutil.search.best import best_row
from dlutil.training.initial_weights import FREEZE_LOADED, WeightInit

__all__ = ['resolve', 'from_args', 'check']

log = logging.getLogger('dlutil')


def resolve(path):
    """The ``.pt`` file ``--init-from path`` means: ``path`` itself, or the best trial's
    ``best.pt`` of the results directory ``path``; an absolute path."""
    if os.path.isdir(path):
        store = results.ResultStore(path)
        row = best_row(list(store.read_search().values()))
        if row is None:
            raise FileNotFoundError(f'--init-from {path}: a folder without a finished trial (no '
                                    f'search.csv row with a reward); give a results directory '
                                    f'or a .pt file')
        path = store.trial_file(row['trial'], 'best.pt')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'--init-from {path}: no such file')
    return os.path.abspath(path)


def _prefixes(text):
    return tuple(part.strip() for part in text.split(',') if part.strip())


def from_args(args, store):
    """The :class:`WeightInit` of the command line ``args``, or None.

    Without ``--init-from``, a search in ``store`` that recorded one continues with it.
    """
    if args.init_from is None:
        saved = results.read_json(store.path('search.json')).get('init') \
            if os.path.exists(store.path('search.json')) else None
        if saved is None or args.restart:
            return None
        log.info(f'{store.path("search.json")}: using its --init-from {saved["path"]} (flags '
                 f'left out are taken from search.json)')
        return WeightInit(saved['path'], tuple(saved['layers']), tuple(saved['freeze']),
                          saved['partial'])
    freeze = ()
    if args.freeze is not None:
        freeze = FREEZE_LOADED if args.freeze == '' else _prefixes(args.freeze)
    return WeightInit(resolve(args.init_from), _prefixes(args.init_layers or ''), freeze,
                      args.init_partial)


def check(definition, init, config, device):
    """Load ``init`` into a network of ``config`` now, so that weights that do not fit stop the
    command before any trial (one :class:`WeightInitError` naming the keys)."""
    if init is None:
        return
    model = definition.Model(config, device=device)
    loaded, frozen = init.apply(model.network)
    log.info(f'--init-from {init.path}: {len(loaded)} tensors to load'
             + (f' under {", ".join(init.layers)}' if init.layers else '')
             + (f', {len(frozen)} parameters frozen' if frozen else '') + ' in every trial')
    if init.freeze and not frozen:
        raise WeightInitError(f'--freeze: no parameter to freeze among the loaded tensors of '
                              f'--init-from {init.path}')
    if frozen and not any(p.requires_grad for p in model.network.parameters()):
        raise WeightInitError('--freeze: every parameter of the network would be frozen, and '
                              'nothing would train; load or freeze fewer layers '
                              '(--init-layers PREFIX, --freeze PREFIX)')
