"""einsum: products and sums of tensors named by subscripts.

``einsum("bij,bjk->bik", a, b)`` multiplies a and b wherever their letters
agree and sums over the letters that the output (after ``->``) leaves out; it
is a batched matrix product here, a trace with ``"ii->"``, an outer product
with ``"i,j->ij"``. ``...`` stands for broadcast dims, and without ``->`` the
output is the letters that appear once, in alphabetical order, after the
``...`` dims (NumPy's and PyTorch's rule).

The gradient for one operand is itself an einsum: the incoming gradient
(subscripts of the output) contracted with every other operand, onto that
operand's subscripts. Three cases complete the rule:

* a letter that only this operand has (summed away alone, as j in ``"ij->i"``)
  does not reach the gradient, which is broadcast along it;
* a letter repeated within the operand (``"ii->i"``, a diagonal) sends the
  gradient to that diagonal only: an identity matrix per repeat does it;
* a ``...`` dim of size 1 broadcast against a larger one is summed back to 1.

Because the backward is an einsum of Tensors, it can be differentiated again.
The products run in NumPy's own einsum loops (no BLAS, so the bits never
depend on a thread count), two operands at a time; for large matrix products
``matmul`` is faster.
"""
import string

import numpy as np

from ..autograd import Function, constant
from ..tensor import Tensor
from .arithmetic import _wants
from .broadcasting import expand, sum_to
from .promotion import DTypeMismatchError
from .shape import reshape


def _parse(equation, shapes):
    """The equation with ``...`` spelled out as letters: (input terms, output term).

    Ellipsis dims are right-aligned across operands, as in broadcasting.
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operand(s), "
                         f"but {len(shapes)} tensor(s) were given")
    for term in terms + ([rhs] if arrow else []):
        letters = term.replace("...", "")
        if "." in letters or not all(c in string.ascii_letters for c in letters):
            raise ValueError(f"einsum: subscripts must be letters and '...', got {term!r} in {equation!r}")
    spare = [c for c in string.ascii_letters[::-1] if c not in eq]
    widths = []
    for term, shape in zip(terms, shapes):
        named = len(term.replace("...", ""))
        if "..." not in term and named != len(shape) or named > len(shape):
            raise ValueError(f"einsum: subscripts {term!r} name {named} dims, but the operand has "
                             f"shape {tuple(shape)}")
        widths.append(len(shape) - named if "..." in term else 0)
    ellipsis = "".join(spare[:max(widths, default=0)])
    full = [t.replace("...", ellipsis[len(ellipsis) - w:]) for t, w in zip(terms, widths)]
    if arrow:   # an output without "..." sums the broadcast dims away, as PyTorch does
        out = rhs.replace("...", ellipsis)
    else:
        counts = {c: "".join(full).count(c) for c in set("".join(full)) if c not in ellipsis}
        out = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1))
    for c in out:
        if out.count(c) > 1 or c not in "".join(full):
            raise ValueError(f"einsum: output subscript {c!r} of {equation!r} must appear once in the "
                             "output and at least once in an operand")
    return full, out


class Einsum(Function):
    """One einsum with its subscripts spelled out (no ``...``)."""

    def forward(self, *arrays, terms, out):
        self.terms, self.out_term = terms, out
        result = np.einsum(",".join(terms) + "->" + out, *arrays)
        # a diagonal or a transpose comes back as a view of the input: own the result instead
        return result if result.flags.owndata else result.copy()

    def backward(self, grad):
        return tuple(self._operand_grad(i, grad) if _wants(t) else None for i, t in enumerate(self.inputs))

    def _operand_grad(self, i, grad):
        operands, terms = self.inputs, self.terms
        term = terms[i]
        sizes = {}
        for t, x in zip(terms, operands):
            for c, n in zip(t, x.shape):
                if sizes.get(c, 1) == 1:   # a size-1 dim broadcasts; any other size (0 too) is the letter's
                    sizes[c] = n
        for c, n in zip(self.out_term, grad.shape):
            sizes[c] = n
        others = [j for j in range(len(terms)) if j != i]
        reached = set(self.out_term).union(*(terms[j] for j in others))
        letters = "".join(dict.fromkeys(term))           # each letter once, in order
        kept = "".join(c for c in letters if c in reached)
        # the operands broadcast to the full sizes, so every letter has one size in the product
        factors = [grad] + [_broadcast(operands[j], terms[j], sizes) for j in others]
        g = _einsum_terms([self.out_term] + [terms[j] for j in others], kept, factors)
        if kept != letters:   # letters only this operand has: the gradient is constant along them
            g = expand(reshape(g, tuple(sizes[c] if c in kept else 1 for c in letters)),
                       tuple(sizes[c] for c in letters))
        if len(letters) != len(term):   # repeated letters: onto their diagonal, through identities
            spare = [c for c in string.ascii_letters if c not in "".join(terms) + self.out_term]
            target, eyes, eye_terms = "", [], []
            for c in term:
                if c in target:
                    fresh = spare.pop()
                    eyes.append(constant(np.eye(sizes[c], dtype=g.dtype)))
                    eye_terms.append(c + fresh)
                    c = fresh
                target += c
            g = _einsum_terms([letters] + eye_terms, target, [g] + eyes)
        shape = operands[i].shape
        return sum_to(g, shape) if tuple(g.shape) != tuple(shape) else g


def _broadcast(x, term, sizes):
    full = tuple(sizes[c] for c in term)
    return x if tuple(x.shape) == full else expand(x, full)


def _einsum_terms(terms, out, operands):
    """einsum from spelled-out subscripts (used by the backward, which builds them)."""
    return Einsum.apply(*operands, terms=tuple(terms), out=out)


def einsum(equation, *operands):
    """Sum of products of ``operands`` over the letters the output leaves out (see the module).

    ``operands`` may also be given as one list, as PyTorch allows.

    >>> import nnlite as nl
    >>> a = nl.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> nl.einsum("ij,ij->", a, a).item(), nl.einsum("ii", a).item()
    (30.0, 5.0)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    for k, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum: operand {k} must be a Tensor, got {type(x).__name__}")
    dtypes = {x.dtype for x in operands}
    if len(dtypes) > 1:
        given = ", ".join(str(x.dtype) for x in operands)
        raise DTypeMismatchError(f"einsum: operands must share one dtype, as in PyTorch, got {given}")
    terms, out = _parse(equation, [x.shape for x in operands])
    for c in set("".join(terms)):
        # a letter has one size, or one size and 1 (broadcast); a repeat within one operand
        # (a diagonal) cannot broadcast
        sizes = {n for t, x in zip(terms, operands) for d, n in zip(t, x.shape) if d == c}
        within = [{n for d, n in zip(t, x.shape) if d == c} for t, x in zip(terms, operands)]
        if len(sizes - {1}) > 1 or any(len(w) > 1 for w in within):
            raise ValueError(f"einsum: subscript {c!r} of {equation!r} labels dims of sizes "
                             f"{sorted(sizes)}; they must be equal (or 1, to broadcast)")
    if len(operands) <= 2:
        return _einsum_terms(terms, out, operands)
    # Three or more operands: contract them two at a time, left to right, keeping only the
    # letters a later operand or the output still needs. One product over every letter at
    # once would loop over all their sizes together ("ij,jk,kl" would cost n^4, not 2 n^3).
    current, current_term = operands[0], terms[0]
    for k in range(1, len(operands)):
        later = "".join(terms[k + 1:]) + out
        target = out if k == len(operands) - 1 else \
            "".join(dict.fromkeys(c for c in current_term + terms[k] if c in later))
        current = _einsum_terms([current_term, terms[k]], target, [current, operands[k]])
        current_term = target
    return current
