"""The schedule against the paper's bracket table (Li et al. 2018, Table 1: R = 81, η = 3)."""
import math

import pytest

from dlutil.search import schedule as hyperband


def test_schedule_matches_the_papers_table_for_R81_eta3():
    table = {s: [(b.n, b.epochs) for b in bracket.rungs]
             for s, bracket in ((b.s, b) for b in hyperband.schedule(81, 3))}
    assert table == {
        4: [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        3: [(34, 3), (11, 9), (3, 27), (1, 81)],
        2: [(15, 9), (5, 27), (1, 81)],
        1: [(8, 27), (2, 81)],
        0: [(5, 81)],
    }
    assert [b.s for b in hyperband.schedule(81, 3)] == [4, 3, 2, 1, 0]


def test_totals_for_R81_eta3():
    assert hyperband.totals(81, 3) == (143, 206, 1581, 1902)


def reference_totals(R, eta):
    """Algorithm 1 written out directly, with exact rational resources, for cross-checking."""
    s_max = 0
    while eta ** (s_max + 1) <= R:
        s_max += 1
    B = (s_max + 1) * R
    configs = evaluations = 0
    for s in range(s_max, -1, -1):
        n = math.ceil(B / R * eta ** s / (s + 1))
        configs += n
        evaluations += sum(n // eta ** i for i in range(s + 1))
    return configs, evaluations


@pytest.mark.parametrize('R, eta', [(81, 3), (243, 3), (100, 10), (1000, 10), (27, 3), (20, 3),
                                    (16, 2), (9, 3), (5, 4), (10, 10)])
def test_configuration_and_evaluation_counts(R, eta):
    assert hyperband.totals(R, eta)[:2] == reference_totals(R, eta)


def test_R243_uses_integer_log():
    # math.log(243, 3) is 4.999…: a float s_max would drop the most aggressive bracket
    assert hyperband.integer_log(243, 3) == 5
    brackets = hyperband.schedule(243, 3)
    assert brackets[0].s == 5 and brackets[0].n == 243
    assert [r.epochs for r in brackets[0].rungs] == [1, 3, 9, 27, 81, 243]
    assert hyperband.totals(243, 3)[:2] == (415, 611)


def test_eta10():
    brackets = hyperband.schedule(100, 10)
    assert [(b.s, b.n) for b in brackets] == [(2, 100), (1, 15), (0, 3)]
    assert [(r.n, r.epochs) for r in brackets[0].rungs] == [(100, 1), (10, 10), (1, 100)]


def test_eta_larger_than_R_is_one_configuration_for_R_epochs():
    brackets = hyperband.schedule(5, 10)
    assert len(brackets) == 1
    assert [(r.n, r.epochs) for r in brackets[0].rungs] == [(1, 5)]


def test_epochs_rise_to_R_and_resumed_count_is_the_increments():
    for R, eta in [(20, 3), (50, 3), (81, 3), (30, 4)]:
        configs, evals, resumed, scratch = hyperband.totals(R, eta)
        for bracket in hyperband.schedule(R, eta):
            epochs = [r.epochs for r in bracket.rungs]
            assert epochs == sorted(set(epochs)) and epochs[-1] == R and epochs[0] >= 1
            assert bracket.keep == tuple(r.n for r in bracket.rungs[1:]) + (0,)
        assert resumed < scratch or configs == evals


@pytest.mark.parametrize('R, eta, error', [(0, 3, ValueError), (10, 1, ValueError),
                                           (2.5, 3, TypeError)])
def test_bad_arguments(R, eta, error):
    with pytest.raises(error, match='epoch|eta'):
        hyperband.schedule(R, eta)


def test_top_k_drops_failures_and_breaks_ties_by_id():
    rewards = {3: 0.5, 1: 0.5, 2: float('nan'), 4: None, 5: 0.9, 6: float('-inf')}
    assert hyperband.top_k(rewards, 3) == [5, 1, 3]
    assert hyperband.top_k(rewards, 10) == [5, 1, 3]


def test_totals_with_a_trials_budget_count_every_planned_bracket():
    # R = 9, eta = 3: one iteration is 3 brackets, 9 + 5 + 3 = 17 configurations and
    # 9+3+1 + 5+1 + 3 = 22 rung evaluations; --trials 40 runs two whole iterations (34
    # configurations, 44 evaluations) and a third iteration's first bracket cut to 6 (6 + 2 + 1)
    assert hyperband.totals(9, 3)[:2] == (17, 22)
    assert hyperband.totals(9, 3, trials=40)[:2] == (40, 44 + 9)
    assert hyperband.totals(9, 3, trials=5)[:2] == (5, 5 + 1 + 1)
    assert hyperband.totals(81, 3, trials=None) == hyperband.totals(81, 3)


def test_jobs_go_out_longest_critical_path_first():
    from dlutil.search.brackets import BracketState, critical_path_first
    states = [BracketState(p) for p in hyperband.plan(27, 3)]
    assert [s.remaining_epochs for s in states] == [27, 27, 27, 27]
    # at the start every member has 27 epochs to go: the plan's order stands
    assert critical_path_first(states) == states
    first = states[0]  # bracket 3: 27 configurations at 1 epoch; its best 9 go on to 3 epochs
    for index in first.members:
        first.record(index, {'status': 'ok', 'reward': float(index)})
    assert first.rung == 1 and first.remaining_epochs == 26
    order = critical_path_first(states)
    assert order[-1] is first and order[:3] == states[1:]
