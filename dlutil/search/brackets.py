"""Where one bracket of a running search stands: its rung, its members and their rewards."""
from dlutil.search import schedule


class BracketState:
    """One bracket of the plan as the search runs it.

    Parameters
    ----------
    planned: schedule.PlannedBracket

    Attributes
    ----------
    rung: int
        The rung being evaluated.
    members: list of int
        Trial indices of that rung.
    rewards: dict
        Trial index → reward (None when the evaluation failed) of the rung's recorded members.
    submitted: set
        Members handed to an executor.
    finished: bool
        No rung is left, or no member of the last one survived.
    """

    def __init__(self, planned):
        self.planned = planned
        self.rung = 0
        self.members = list(range(planned.first, planned.first + planned.sizes[0]))
        self.rewards, self.submitted = {}, set()
        self.finished = False

    @property
    def epochs(self):
        return self.planned.epochs[self.rung]

    @property
    def remaining_epochs(self):
        """Epochs one member still trains before the bracket ends: its critical path."""
        done = self.planned.epochs[self.rung - 1] if self.rung else 0
        return self.planned.epochs[-1] - done

    def waiting(self):
        """Members of the current rung not yet submitted nor recorded."""
        if self.finished:
            return []
        return [i for i in self.members if i not in self.submitted and i not in self.rewards]

    def record(self, index, row):
        """Record ``row`` (of ``search.csv``) of member ``index``; the last one closes the rung."""
        self.rewards[index] = row['reward'] if row['status'] == 'ok' else None
        if len(self.rewards) == len(self.members):
            self._advance()

    def _advance(self):
        keep = self.planned.sizes[self.rung + 1] if self.rung + 1 < len(self.planned.sizes) else 0
        survivors = schedule.top_k(self.rewards, keep)
        if not survivors:
            self.finished = True
            return
        self.rung += 1
        self.members, self.rewards, self.submitted = survivors, {}, set()


def critical_path_first(states):
    """``states`` ordered for handing out jobs: most epochs left per member first (plan order
    among equals), so that no bracket's last, longest rungs run alone at the end of a search."""
    return sorted(states, key=lambda state: -state.remaining_epochs)
