"""The one place that picks how rung evaluations run: here, in worker processes, as data-parallel
groups, or on a Ray cluster."""
from dlutil import rng
from dlutil.search.executors.ddp import DDPExecutor
from dlutil.search.executors.local import InlineExecutor, PoolExecutor
from dlutil.search.executors.ray import RayExecutor


def make_executor(settings, definition, store):
    """The executor ``settings`` asks for.

    Parameters
    ----------
    settings: dlutil.search.settings.SearchSettings
        With its seed and threads chosen (see :meth:`SearchSettings.resolved`).
    definition: dlutil.definition.Definition
    store: dlutil.search.results.ResultStore

    Returns
    -------
    An object with ``workers`` (jobs it runs at once), ``submit(job)`` returning a
    :class:`concurrent.futures.Future` of :func:`run_job`'s outcome, and ``stop(wait=True)``;
    ``wait=False`` ends the running jobs now. On Ray, an unreachable address or a cluster
    without room for one trial is refused here.
    """
    assert settings.seed is not None and settings.threads is not None, settings
    devices = settings.devices or [settings.device or 'cpu']
    if settings.ray is not None:
        return RayExecutor(definition, settings.data_dir, settings.batch_size, store,
                           settings.threads, settings.device, settings.ray or None,
                           settings.gpus_per_trial, settings.ddp)
    if settings.ddp > 1:
        return DDPExecutor(definition, settings.data_dir, settings.batch_size, store,
                           settings.workers, devices, settings.threads, settings.ddp)
    data_seed = rng.data_seed(settings.seed)
    if settings.workers == 1:
        return InlineExecutor(definition, settings.data_dir, settings.batch_size,
                              settings.device, store, settings.threads, data_seed)
    return PoolExecutor(definition, settings.data_dir, settings.batch_size, store,
                        settings.workers, devices, settings.threads, data_seed)
