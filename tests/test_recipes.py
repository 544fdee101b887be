"""The recipes: they build, they learn (loose bars, short runs), and the language model is tied and causal."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import recipes
from nnlite.data import CharDataset, CharVocab, DataLoader, Subset, load_text
from nnlite.train import evaluate, fit


@pytest.fixture(autouse=True)
def one_thread():
    """Small models gain nothing from a second thread, and a busy machine makes spinning threads slow."""
    before = nl.get_num_threads()
    nl.set_num_threads(1)
    yield
    nl.set_num_threads(before)


def test_unknown_recipe_and_bad_settings():
    with pytest.raises(KeyError, match="unknown recipe 'mnist'; choose one of: mnist1d-logistic"):
        recipes.build("mnist")
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        recipes.build("digits-mlp", epochs=0)
    with pytest.raises(ValueError, match="lr must be a positive number"):
        recipes.build("digits-mlp", lr=-1.0)


def test_a_batch_larger_than_the_language_models_training_set_is_named():
    # it stopped in OneCycleLR with "Expected positive integer steps_per_epoch, but got 0"
    with pytest.raises(ValueError, match=r"^batch_size 1000000 is more than the \d+ training windows of 64 "
                                         r"characters: no full batch to train on$"):
        recipes.build("char-transformer", batch_size=10**6)


def test_same_seed_builds_the_same_model():
    # The char transformer's data is bundled, so this runs without any optional package.
    a = recipes.build("char-transformer", seed=3).model
    b = recipes.build("char-transformer", seed=3).model
    c = recipes.build("char-transformer", seed=4).model
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), c.parameters()))


def test_mnist1d_models_match_the_published_architectures():
    assert recipes.MNIST1DCNN().num_parameters() == 5210
    assert recipes.MNIST1DMLP().num_parameters() == 40 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert recipes.MNIST1DCNN()(nl.randn(7, 40)).shape == (7, 10)


def test_digits_mlp_learns():
    pytest.importorskip("sklearn")
    results = recipes.run(recipes.build("digits-mlp", epochs=8), progress=False)
    assert results["test_accuracy"] >= 0.9
    assert results["num_parameters"] == 26122
    assert results["parameters_by_kind"] == {"weight": 25856, "bias": 266}
    assert len(results["history"]["val_accuracy"]) == 8


def test_mnist1d_cnn_short_run_beats_chance_clearly():
    pytest.importorskip("mnist1d")
    results = recipes.run(recipes.build("mnist1d-cnn", epochs=6), progress=False)
    assert results["test_accuracy"] >= 0.5  # chance is 0.1; the full recipe reaches ~0.93
    assert results["steps"] == 6 * 40


def test_char_transformer_is_tied_and_causal():
    recipe = recipes.build("char-transformer")
    model = recipe.model
    assert model.head.weight is model.token_embedding.weight
    assert model.tied_parameters() == [["token_embedding.weight", "head.weight"]]
    names = [n for n, _ in model.named_parameters()]
    assert "head.weight" not in names  # counted once
    model.eval()
    vocab = model.token_embedding.num_embeddings
    ids = np.random.default_rng(0).integers(0, vocab, (1, 16))
    changed = ids.copy()
    changed[0, 10:] = (changed[0, 10:] + 1) % vocab
    with nl.no_grad():
        a, b = model(nl.tensor(ids)).data, model(nl.tensor(changed)).data
    np.testing.assert_allclose(a[0, :10], b[0, :10], rtol=1e-5, atol=1e-6)  # the past cannot see the future
    assert not np.allclose(a[0, 10:], b[0, 10:])
    out = model.generate(ids[0, :5], 7, generator=nl.Generator(1))
    assert out.shape == (12,) and np.array_equal(out[:5], ids[0, :5])
    with pytest.raises(ValueError, match="block_size=64"):
        model(nl.tensor(np.zeros((1, 65), np.int64)))


def test_a_small_char_transformer_beats_the_unigram_baseline_quickly():
    text = load_text("hamlet")
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    split = 150_000
    train = CharDataset(ids[:split], 32, stride=7)
    test = CharDataset(ids[split:], 32, stride=32)
    nl.manual_seed(0)
    model = recipes.CharTransformer(len(vocab), block_size=32, d_model=32, nhead=2, num_layers=1,
                                    dim_feedforward=64)
    loader = DataLoader(Subset(train, np.arange(80 * 16)), batch_size=16, shuffle=True)
    fit(model, recipes._lm_loss, nl.optim.Adam(model.parameters(), lr=1e-2), loader, epochs=1, progress=False)
    baseline = recipes.unigram_loss(ids[:split], ids[split:], len(vocab))
    loss = evaluate(model, recipes._lm_loss, DataLoader(test, batch_size=256))["loss"]
    assert 3.0 < baseline < 3.6
    assert loss < baseline - 0.25  # 80 steps already learn which characters follow which


def test_generate_puts_back_each_layers_own_mode():
    model = recipes.build("char-transformer").model
    model.train()
    layers = model.encoder.layers
    layers[0].eval()
    model.generate(np.zeros(3, np.int64), 2, generator=nl.Generator(0))
    assert model.training and not layers[0].training and layers[1].training
