"""Where rung evaluations run: :func:`make_executor` picks inline, a worker pool, ``--ddp``
groups or ``--ray`` tasks; every one of them runs :func:`run_job` on a :class:`Job`."""
from dlutil.search.executors._factory import make_executor
from dlutil.search.executors._job import FATAL, Job, TrialData, run_job

__all__ = ['FATAL', 'Job', 'TrialData', 'make_executor', 'run_job']
