"""What a search returns: its trials, each with a history of (budget, score), and the best one."""
import math

__all__ = ["Trial", "SearchResult"]


class Trial:
    """One configuration and what it scored: ``history`` holds ``(budget, score)`` per evaluation."""

    def __init__(self, trial_id, config):
        self.trial_id, self.config, self.history = trial_id, config, []

    @property
    def score(self):
        """The score at the largest budget this trial reached."""
        return self.history[-1][1] if self.history else None

    @property
    def budget(self):
        return self.history[-1][0] if self.history else None

    def __repr__(self):
        return f"Trial({self.trial_id}, {self.config}, score={self.score}, budget={self.budget})"


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class SearchResult:
    """The trials of one search, best first by :attr:`best`; ``mode`` says whether lower or higher wins.

    ``total_budget`` is the sum of the budgets of all evaluations (for random
    search, one per trial): the cost of the search in the objective's units.
    """

    def __init__(self, trials, mode, method, meta):
        self.trials, self.mode, self.method, self.meta = list(trials), mode, method, dict(meta)

    def _key(self, trial):
        # Trials that reached a larger budget rank first: their score is the better-informed one.
        score = trial.score
        if score is None or not math.isfinite(score):
            score = math.inf
        elif self.mode == "max":
            score = -score
        return (-(trial.budget or 0), score, trial.trial_id)

    def ranked(self):
        """Trials from best to worst (largest budget reached first, then by score)."""
        return sorted(self.trials, key=self._key)

    @property
    def best(self):
        return self.ranked()[0]

    @property
    def best_config(self):
        return dict(self.best.config)

    @property
    def total_budget(self):
        return float(sum(b for t in self.trials for b, _ in t.history))

    def __len__(self):
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    def table(self, top=None):
        """The trials as an aligned text table, best first (``top``: only the first ``top`` rows)."""
        names = list(self.trials[0].config) if self.trials else []
        header = ["trial", *names, "budget", "score"]
        rows = [[str(t.trial_id), *(_format(t.config[n]) for n in names), _format(t.budget), _format(t.score)]
                for t in self.ranked()[:top]]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_dict(self):
        """JSON-able: the method, its meta-parameters, every trial's config and history, the best trial."""
        return {"method": self.method, "mode": self.mode, "meta": self.meta,
                "trials": [{"trial_id": t.trial_id, "config": t.config, "history": [list(h) for h in t.history]}
                           for t in self.trials],
                "best": {"trial_id": self.best.trial_id, "config": self.best_config, "score": self.best.score}}

    def __repr__(self):
        return f"SearchResult({self.method}, {len(self.trials)} trials, best={self.best!r})"
