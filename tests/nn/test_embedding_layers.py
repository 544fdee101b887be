"""Embedding and positional encodings: PyTorch equality, kinds, buffers, padding, errors."""
import math

import numpy as np
import pytest

import nnlite as nl
from nnlite.autograd import gradcheck, gradgradcheck
from helpers import copy_to_torch, f64

F = nl.nn.functional


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    ours = nl.nn.Embedding(7, 3, padding_idx=padding_idx).double()
    theirs = torch.nn.Embedding(7, 3, padding_idx=padding_idx).double()
    assert ours.padding_idx == theirs.padding_idx
    if padding_idx is not None:
        assert np.all(ours.weight.data[padding_idx] == 0)
    copy_to_torch(ours, theirs)
    idx = np.array([[1, 2, 6], [2, 0, 0], [6, 6, 5]])
    y, yt = ours(nl.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_array_equal(y.data, yt.detach().numpy())
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(nl.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]


def test_embedding_init_kind_and_from_pretrained():
    nl.manual_seed(0)
    emb = nl.nn.Embedding(400, 50)
    assert emb.weight.kind == "embedding" and emb.weight.init == {"scheme": "normal_", "mean": 0.0, "std": 1.0}
    assert abs(emb.weight.data.std() - 1.0) < 0.02 and abs(emb.weight.data.mean()) < 0.02
    table = nl.randn(5, 2)
    frozen = nl.nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and np.array_equal(frozen.weight.data, table.data)
    assert nl.nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_embedding_op_derivatives():
    rng = np.random.default_rng(1)
    w = f64(rng, 5, 3)
    idx = nl.tensor([[0, 1, 4], [4, 2, 1]])
    assert gradcheck(lambda w: F.embedding(idx, w), [w])
    assert gradgradcheck(lambda w: F.embedding(idx, w, padding_idx=4) ** 2, [w])


def test_a_0_dim_index_picks_one_row_of_shape_embedding_dim():
    rng = np.random.default_rng(2)
    w = f64(rng, 4, 3)
    y = F.embedding(nl.tensor(2), w)
    assert y.shape == (3,) and np.array_equal(y.data, w.data[2])
    assert gradcheck(lambda w: F.embedding(nl.tensor(1), w), [w])
    assert gradgradcheck(lambda w: F.embedding(nl.tensor(3), w, padding_idx=3) ** 2, [w])
    from helpers import torch_or_skip
    torch = torch_or_skip()
    assert nl.nn.Embedding(5, 2)(nl.tensor(1)).shape == tuple(torch.nn.Embedding(5, 2)(torch.tensor(1)).shape)

def test_embedding_errors():
    emb = nl.nn.Embedding(10, 4)
    with pytest.raises(IndexError, match=r"Embedding\(num_embeddings=10\): index 10 is out of range"):
        emb(nl.tensor([[1, 10]]))
    with pytest.raises(IndexError, match="index -1"):
        emb(nl.tensor([-1]))
    with pytest.raises(TypeError, match="integers"):
        emb(nl.tensor([1.0]))
    with pytest.raises(ValueError, match="max_norm=None"):
        nl.nn.Embedding(10, 4, max_norm=1.0)
    with pytest.raises(ValueError, match="padding_idx"):
        nl.nn.Embedding(10, 4, padding_idx=10)


def test_learned_positional_embedding():
    pos = nl.nn.LearnedPositionalEmbedding(16, 8)
    assert pos.weight.kind == "positional" and pos.weight.shape == (16, 8)
    assert pos.weight.init == {"scheme": "normal_", "mean": 0.0, "std": 0.02}
    x = nl.randn(2, 5, 8, requires_grad=True)
    y = pos(x)
    np.testing.assert_allclose(y.data, x.data + pos.weight.data[:5])
    y.sum().backward()
    expected = np.zeros((16, 8), np.float32)
    expected[:5] = 2.0
    np.testing.assert_array_equal(pos.weight.grad.data, expected)
    assert list(pos.state_dict()) == ["weight"]
    with pytest.raises(ValueError, match=r"seq_len <= 16, 8\), got shape \(1, 17, 8\)"):
        pos(nl.zeros(1, 17, 8))


@pytest.mark.parametrize("d_model", [8, 7])
def test_sinusoidal_encoding_formula_and_buffer(d_model):
    pe = nl.nn.SinusoidalPositionalEncoding(d_model, max_len=32)
    assert list(pe.parameters()) == [] and [n for n, _ in pe.named_buffers()] == ["pe"]
    assert isinstance(pe.pe, nl.nn.Buffer) and list(pe.state_dict()) == []
    table = pe.pe.data
    for p in (0, 3, 31):
        for i in range(d_model):
            angle = p / 10000 ** ((i - i % 2) / d_model)
            want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert table[p, i] == pytest.approx(want, abs=1e-6)
    x = nl.randn(3, 10, d_model, requires_grad=True)
    np.testing.assert_allclose(pe(x).data, x.data + table[:10])
    pe(x).sum().backward()
    assert np.all(x.grad.data == 1)
    with pytest.raises(ValueError, match="SinusoidalPositionalEncoding"):
        pe(nl.zeros(2, 40, d_model))


def test_torch_embedding_state_dict_loads():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(9, 4, padding_idx=0)
    ours = nl.nn.Embedding(9, 4, padding_idx=0)
    ours.load_state_dict(theirs.state_dict())
    idx = np.array([[0, 8, 3]])
    np.testing.assert_array_equal(ours(nl.tensor(idx)).data, theirs(torch.tensor(idx)).detach().numpy())
