"""Splitting: split and chunk, the inverse of ``cat``.

Each piece is a ``narrow`` of the input along ``dim``, a view of it, so each
piece's gradient goes back to the place in the input the piece came from.
"""
from .dims import _dim
from .indexing import narrow


def _split_dim(op, input, dim):
    if input.ndim == 0:
        raise ValueError(f"{op}: expected a tensor with at least 1 dim, got a 0-dim tensor")
    return _dim(op, dim, input.ndim)


def split(tensor, split_size_or_sections, dim=0):
    """Pieces of ``tensor`` along ``dim``: each ``split_size_or_sections`` long (the last may be
    shorter), or as long as each entry of a list of sizes (named as in ``torch.split``)."""
    dim = _split_dim("split", tensor, dim)
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} sum to {sum(sizes)}, but dim {dim} has size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(tensor, dim, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: expected a positive number of chunks, got {chunks}")
    dim = _split_dim("chunk", input, dim)
    n = input.shape[dim]
    if n == 0:   # PyTorch: as many empty chunks as asked for
        return split(input, [0] * chunks, dim)
    return split(input, -(-n // chunks), dim)
