"""Hyperparameter search (nl.tune): domains, reproducibility, halving schedules, finding a known optimum."""
import json
import math

import numpy as np
import pytest

from nnlite import tune


def _bowl(config, budget=None):
    """A cheap stand-in for training: best at lr = 1e-2, weight_decay = 1e-4; more budget, less noise."""
    noise = 0.0 if budget is None else 1.0 / budget
    return (math.log10(config["lr"]) + 2) ** 2 + 0.5 * (math.log10(config["weight_decay"]) + 4) ** 2 + noise


SPACE = {"lr": tune.loguniform(1e-5, 1.0), "weight_decay": tune.loguniform(1e-7, 1e-1)}


def test_domains_sample_in_range_and_log_uniformly():
    rng = np.random.default_rng(0)
    lr = np.array([tune.loguniform(1e-4, 1.0).sample(rng) for _ in range(4000)])
    assert lr.min() >= 1e-4 and lr.max() < 1.0
    # each decade equally likely: about a quarter of the draws below 1e-3
    assert 0.22 < np.mean(lr < 1e-3) < 0.28
    ints = {tune.randint(2, 5).sample(rng) for _ in range(200)}
    assert ints == {2, 3, 4}
    assert {tune.choice(["sgd", "adam"]).sample(rng) for _ in range(50)} == {"sgd", "adam"}
    x = [tune.uniform(-1, 1).sample(rng) for _ in range(100)]
    assert -1 <= min(x) and max(x) < 1
    config = tune.sample_config({"a": tune.uniform(0, 1), "fixed": 7}, rng)
    assert list(config) == ["a", "fixed"] and config["fixed"] == 7


def test_domain_and_search_errors():
    with pytest.raises(ValueError, match=r"loguniform: expected 0 < low < high, got low=0, high=1"):
        tune.loguniform(0, 1)
    with pytest.raises(ValueError, match=r"uniform: expected low < high, got low=2, high=1"):
        tune.uniform(2, 1)
    with pytest.raises(ValueError, match="choice: expected at least one category"):
        tune.choice([])
    with pytest.raises(TypeError, match="choice: expected a list of categories, got the string 'adam'"):
        tune.choice("adam")
    with pytest.raises(ValueError, match=r"random_search: num_samples must be a whole number >= 1, got 2.5"):
        tune.random_search(_bowl, SPACE, 2.5)
    with pytest.raises(ValueError, match=r"successive_halving: num_samples must be a whole number >= 1, got 0"):
        tune.successive_halving(_bowl, SPACE, 0, min_budget=1, max_budget=9)
    with pytest.raises(ValueError, match=r"halving rate eta must be > 1, got 1"):
        tune.successive_halving(_bowl, SPACE, 9, min_budget=1, max_budget=9, eta=1)
    with pytest.raises(ValueError, match=r"0 < min_budget <= max_budget < inf, got min_budget=10, max_budget=9"):
        tune.hyperband(_bowl, SPACE, min_budget=10, max_budget=9)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max', got 'best'"):
        tune.random_search(_bowl, SPACE, 3, mode="best")
    with pytest.raises(KeyError, match=r"keys \['acc', 'loss'\]; pass metric="):
        tune.random_search(lambda c: {"loss": 1.0, "acc": 0.5}, SPACE, 2)
    with pytest.raises(TypeError, match="must return a number"):
        tune.random_search(lambda c: "bad", SPACE, 2)
    with pytest.raises(TypeError, match="expected a dict of name -> domain, got list"):
        tune.random_search(_bowl, [1, 2], 2)
    # Bounds that are not numbers were refused by whatever operation met them first, in its words.
    number = r"must be a real number \(int, float or NumPy scalar\), got "
    with pytest.raises(TypeError, match="uniform: low " + number + "str"):
        tune.uniform("0", 1)
    with pytest.raises(TypeError, match="loguniform: high " + number + "NoneType"):
        tune.loguniform(1e-3, None)
    with pytest.raises(TypeError, match="randint: low " + number + "str"):
        tune.randint("0", 3)
    with pytest.raises(ValueError, match=r"randint: expected integers low < high, got low=0, high=inf"):
        tune.randint(0, math.inf)
    with pytest.raises(TypeError, match="successive_halving: min_budget " + number + "str"):
        tune.successive_halving(_bowl, SPACE, 9, min_budget="1", max_budget=9)
    with pytest.raises(TypeError, match="hyperband: eta " + number + "NoneType"):
        tune.hyperband(_bowl, SPACE, min_budget=1, max_budget=9, eta=None)
    with pytest.raises(TypeError, match="random_search: budget " + number + "str"):
        tune.random_search(_bowl, SPACE, 2, budget="9")


def test_random_search_finds_the_optimum_region_and_seeds_reproduce():
    res = tune.random_search(_bowl, SPACE, 200, seed=3)
    assert len(res) == 200 and res.method == "random_search"
    best = res.best_config
    assert abs(math.log10(best["lr"]) + 2) < 0.5 and abs(math.log10(best["weight_decay"]) + 4) < 0.8
    assert res.best.score == min(t.score for t in res)
    again = tune.random_search(_bowl, SPACE, 200, seed=3)
    assert [t.config for t in again] == [t.config for t in res]
    other = tune.random_search(_bowl, SPACE, 200, seed=4)
    assert [t.config for t in other] != [t.config for t in res]


def test_random_search_with_a_budget():
    budgets = []
    res = tune.random_search(lambda c, b: budgets.append(b) or _bowl(c, b), SPACE, 4, budget=9, seed=0)
    assert budgets == [9] * 4 and all(t.history == [(9, t.score)] for t in res)
    assert res.total_budget == 36


def test_mode_max_and_metric():
    res = tune.random_search(lambda c: {"accuracy": -_bowl(c)}, SPACE, 50, seed=0, mode="max", metric="accuracy")
    assert res.best.score == max(t.score for t in res)


def test_successive_halving_schedule_and_result():
    calls = []

    def objective(config, budget):
        calls.append(budget)
        return _bowl(config, budget)

    res = tune.successive_halving(objective, SPACE, 27, min_budget=1, max_budget=27, eta=3, seed=0)
    # 27 trials at 1, 9 at 3, 3 at 9, 1 at 27
    assert [calls.count(b) for b in (1, 3, 9, 27)] == [27, 9, 3, 1]
    assert res.total_budget == 27 * 1 + 9 * 3 + 3 * 9 + 1 * 27
    best = res.best
    assert best.budget == 27 and [b for b, _ in best.history] == [1, 3, 9, 27]
    # The survivor of each rung was the best of its rung.
    rung3 = [t for t in res if len(t.history) >= 2]
    assert best.history[1][1] == min(t.history[1][1] for t in rung3)
    assert abs(math.log10(best.config["lr"]) + 2) < 1.0
    same = tune.successive_halving(_bowl, SPACE, 27, min_budget=1, max_budget=27, eta=3, seed=0)
    assert same.to_dict() == res.to_dict()


def test_eta_controls_how_many_survive():
    counts = {}
    for eta in (2, 4):
        res = tune.successive_halving(_bowl, SPACE, 16, min_budget=1, max_budget=16, eta=eta, seed=0)
        counts[eta] = sorted({len(t.history) for t in res})
        assert sum(1 for t in res if t.budget == 16) == 1
    assert counts == {2: [1, 2, 3, 4, 5], 4: [1, 2, 3]}


def test_hyperband_brackets_follow_li_et_al():
    res = tune.hyperband(_bowl, SPACE, min_budget=1, max_budget=27, eta=3, seed=0)
    brackets = [(b["num_samples"], b["min_budget"]) for b in res.meta["brackets"]]
    assert brackets == [(27, 1), (12, 3), (6, 9), (4, 27)]
    assert len(res) == 49 and res.best.budget == 27
    assert abs(math.log10(res.best_config["lr"]) + 2) < 1.0


def test_table_and_json():
    res = tune.random_search(_bowl, SPACE, 5, seed=0)
    lines = res.table().splitlines()
    assert lines[0].split() == ["trial", "lr", "weight_decay", "budget", "score"]
    assert len(lines) == 2 + 5 and lines[2].split()[0] == str(res.best.trial_id)
    assert len(res.table(top=2).splitlines()) == 4
    data = json.loads(json.dumps(res.to_dict()))
    assert data["best"]["config"] == res.best_config and len(data["trials"]) == 5


def test_recipe_objective_trains_a_recipe():
    pytest.importorskip("sklearn")
    objective = tune.recipe_objective("digits-mlp", metric="test_accuracy")
    res = tune.random_search(lambda c: objective(c, budget=1), {"lr": tune.choice([1e-5, 1e-2])}, 4, seed=0,
                             mode="max")
    scores = {t.config["lr"]: t.score for t in res}
    assert scores[1e-2] > scores[1e-5] + 0.2
    with pytest.raises(ValueError, match=r"config keys must be among \['batch_size', 'lr', 'weight_decay'\]"):
        objective({"momentum": 0.9}, 1)


def test_doctests_run():
    import doctest
    from nnlite.tune import search
    failures, tried = doctest.testmod(search, verbose=False)
    assert tried >= 3 and failures == 0


def test_digits_tune_experiment_is_registered_and_runs():
    pytest.importorskip("sklearn")
    from nnlite import recipes
    assert recipes.EXPERIMENTS["digits-tune"] == "nnlite.tune.experiment:run"
    out = recipes.run_experiment("digits-tune", seed=0, epochs=3, progress=False)
    json.dumps(out)
    halving, random = out["successive_halving"], out["random_search"]
    assert halving["total_budget"] == random["total_budget"] == 27 + 9 * 3
    assert halving["configurations"] == 27 and random["configurations"] == 18
    assert halving["test_accuracy"] > 0.85 and "successive halving" in out["summary"]
    # The budget is each search's total (27 configurations do not get 54 epochs each).
    assert "54 epochs per search" in out["summary"] and "epochs each" not in out["summary"]


def test_recipe_objective_names_an_unknown_recipe_before_any_trial():
    with pytest.raises(ValueError, match="recipe_objective: unknown recipe 'nope'; expected one of"):
        tune.recipe_objective("nope")


def test_sample_config_names_an_rng_that_is_not_a_numpy_generator():
    with pytest.raises(TypeError, match="expected rng to be a numpy.random.Generator .*, got int"):
        tune.sample_config({"lr": tune.uniform(0, 1)}, 5)


def test_infinite_and_zero_budgets_are_refused():
    with pytest.raises(ValueError, match="max_budget < inf, got min_budget=1, max_budget=inf"):
        tune.successive_halving(lambda c, b: 0.0, {"x": tune.uniform(0, 1)}, 4, min_budget=1,
                                max_budget=math.inf)   # the rungs never reached it: a hang
    with pytest.raises(ValueError, match="budget must be None or a finite number > 0, got 0"):
        tune.random_search(lambda c, b: 0.0, {"x": tune.uniform(0, 1)}, 2, budget=0)
