"""snn_asr.linear: oneDNN's GEMM for the spiking layers, against torch's own linear."""

import pytest
import torch
import torch.nn.functional as F

from snn_asr.linear import PACK_MIN_USES, linear, matmul_nt, pack, uses_onednn

needs_onednn = pytest.mark.skipif(
    not uses_onednn(torch.zeros(1, 1), torch.zeros(1, 1)), reason="this torch build has no oneDNN linear"
)


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_with_gradients(bias):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 13, requires_grad=True)
    w = torch.randn(11, 13, requires_grad=True)
    b = torch.randn(11, requires_grad=True) if bias else None
    weights = torch.randn(3, 7, 11)
    inputs = [x, w] + ([b] if bias else [])
    ours = linear(x, w, b)
    theirs = F.linear(x, w, b)
    assert ours.grad_fn is not None and type(ours.grad_fn).__name__ != type(theirs.grad_fn).__name__
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for a, t in zip(
        torch.autograd.grad((ours * weights).sum(), inputs),
        torch.autograd.grad((theirs * weights).sum(), inputs),
    ):
        torch.testing.assert_close(a, t, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_gradient_only_to_the_weight():
    torch.manual_seed(1)
    x, w = torch.randn(5, 4), torch.randn(3, 4, requires_grad=True)
    (gw,) = torch.autograd.grad(linear(x, w).sum(), [w])
    torch.testing.assert_close(gw, x.sum(0).expand(3, 4), rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("rows, inputs, outputs", [(16, 550, 1100), (16, 1100, 550), (3, 8, 16), (1, 5, 2)])
def test_packed_weight_gives_bit_identical_products(rows, inputs, outputs):
    """The recurrence packs ``U`` once, the reference passes it plain each frame: they must agree bitwise."""
    torch.manual_seed(2)
    x, w = torch.randn(rows, inputs), torch.randn(outputs, inputs)
    plain = matmul_nt(x, w)
    packed = pack(w, rows, uses=PACK_MIN_USES)
    assert packed.is_mkldnn
    assert torch.equal(matmul_nt(x, packed), plain)
    assert not pack(w, rows, uses=PACK_MIN_USES - 1).is_mkldnn  # too few uses to pay for the reorder
    assert torch.equal(linear(x, w), plain)
    torch.testing.assert_close(plain, x @ w.t(), rtol=1e-4, atol=1e-4)


def test_other_dtypes_and_empty_inputs_fall_back_to_torch():
    torch.manual_seed(3)
    x, w = torch.randn(4, 3, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    assert not uses_onednn(x, w)
    assert torch.equal(linear(x, w), F.linear(x, w))
    assert torch.equal(matmul_nt(x, pack(w, 4, uses=100)), x @ w.t())
    empty = torch.zeros(0, 3)
    assert linear(empty, w.float()).shape == (0, 2)


@needs_onednn
def test_non_contiguous_input():
    torch.manual_seed(4)
    x, w = torch.randn(9, 6).t(), torch.randn(5, 9)
    torch.testing.assert_close(linear(x, w), x @ w.t(), rtol=1e-5, atol=1e-5)
