"""The Hyperband schedule (Li et al., JMLR 2018, Algorithm 1), in the paper's notation.

R is the maximum resource of one configuration (epochs here) and η the halving rate. Bracket s
(s = s_max … 0) starts n configurations at r = R·η^(−s) epochs; rung i trains ⌊n·η^(−i)⌋ of them
to r·η^i epochs and keeps the best ⌊n_i/η⌋ for the next rung.

Epoch counts are cumulative: a configuration promoted from r_i to r_(i+1) epochs continues from
its checkpoint and trains r_(i+1) − r_i more epochs. When R is not a power of η, r·η^i is rounded
to the nearest whole epoch (at least 1); the last rung is always exactly R.
"""
import math
from dataclasses import dataclass
from fractions import Fraction


def integer_log(R, eta):
    """⌊log_η R⌋ in integer arithmetic (``math.log(243, 3)`` is 4.999…)."""
    if R < 1:
        raise ValueError(f'R (--epoch) must be at least 1, got {R}')
    if eta < 2:
        raise ValueError(f'eta (--eta) must be at least 2, got {eta}')
    s = 0
    while eta ** (s + 1) <= R:
        s += 1
    return s


@dataclass(frozen=True)
class Rung:
    """One rung of a bracket: ``n`` configurations trained to ``epochs`` epochs in total."""
    bracket: int
    index: int
    n: int
    epochs: int


@dataclass(frozen=True)
class Bracket:
    """Bracket ``s``: ``n`` fresh configurations, successively halved over its rungs."""
    s: int
    n: int
    rungs: tuple

    @property
    def keep(self):
        """How many configurations survive each rung: ⌊n_i/η⌋ (0 after the last)."""
        return tuple(self.rungs[i + 1].n if i + 1 < len(self.rungs) else 0
                     for i in range(len(self.rungs)))


def schedule(R, eta=3):
    """All brackets of one Hyperband run, s = s_max first.

    Parameters
    ----------
    R: int
        Maximum epochs for one configuration (``--epoch``).
    eta: int
        Halving rate (``--eta``); η > R gives one configuration trained for R epochs.

    Returns
    -------
    list of Bracket
    """
    if not isinstance(R, int) or isinstance(R, bool):
        raise TypeError(f'R (--epoch) must be an integer, got {R!r}')
    if not isinstance(eta, int) or isinstance(eta, bool):
        raise TypeError(f'eta (--eta) must be an integer, got {eta!r}')
    s_max = integer_log(R, eta)
    brackets = []
    for s in range(s_max, -1, -1):
        # n = ⌈(B/R)·η^s/(s+1)⌉ with Hyperband's budget B = (s_max + 1)·R, in integers
        n = -(-(s_max + 1) * eta ** s // (s + 1))
        rungs = []
        for i in range(s + 1):
            n_i = n // eta ** i
            r_i = Fraction(R * eta ** i, eta ** s)
            epochs = R if i == s else max(1, int(r_i + Fraction(1, 2)))
            rungs.append(Rung(bracket=s, index=i, n=n_i, epochs=epochs))
        brackets.append(Bracket(s=s, n=n, rungs=tuple(rungs)))
    return brackets


@dataclass(frozen=True)
class PlannedBracket:
    """Bracket ``s`` of Hyperband iteration ``iteration``, trials ``first`` … ``first+sizes[0]-1``.

    ``sizes[i]`` configurations train to ``epochs[i]`` epochs at rung i; ``position`` is the
    bracket's place in the search's plan.
    """
    position: int
    iteration: int
    s: int
    first: int
    sizes: tuple
    epochs: tuple


def plan(R, eta=3, trials=None):
    """The brackets of a search, in order.

    One Hyperband iteration (s = s_max … 0) without ``trials``; with a budget of ``trials``
    configurations (``--trials``), iterations repeat until it is spent, and the last bracket is
    cut to the configurations left (each of its rungs keeps ⌊n·η^(−i)⌋ of them, at least one).

    Returns
    -------
    list of PlannedBracket
    """
    if trials is not None and trials < 1:
        raise ValueError(f'--trials must be at least 1, got {trials}')
    brackets = schedule(R, eta)
    out, used, iteration = [], 0, 0
    while True:
        for bracket in brackets:
            n = bracket.n if trials is None else min(bracket.n, trials - used)
            if n <= 0:
                return out
            sizes = tuple(r.n for r in bracket.rungs) if n == bracket.n else tuple(
                max(1, n // eta ** i) for i in range(len(bracket.rungs)))
            out.append(PlannedBracket(len(out), iteration, bracket.s, used, sizes,
                                      tuple(r.epochs for r in bracket.rungs)))
            used += n
        iteration += 1
        if trials is None:
            return out


def totals(R, eta=3, trials=None):
    """``(configurations, rung evaluations, epochs resumed, epochs from scratch)`` of a search.

    ``trials`` is the ``--trials`` budget (None: one Hyperband iteration), as in :func:`plan`.
    """
    configs = evaluations = resumed = scratch = 0
    for bracket in plan(R, eta, trials):
        configs += bracket.sizes[0]
        previous = 0
        for n, epochs in zip(bracket.sizes, bracket.epochs):
            evaluations += n
            resumed += n * (epochs - previous)
            scratch += n * epochs
            previous = epochs
    return configs, evaluations, resumed, scratch


def top_k(results, k):
    """The ``k`` best trial ids of a rung; failed ones (reward None, NaN or ±inf) never survive.

    ``results`` maps trial id → reward. Ties go to the lower trial id, so promotion is
    reproducible whatever order the evaluations finished in.
    """
    finite = [(reward, trial) for trial, reward in results.items()
              if reward is not None and math.isfinite(reward)]
    finite.sort(key=lambda item: (-item[0], item[1]))
    return [trial for _, trial in finite[:k]]
