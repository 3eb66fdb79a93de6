"""snn_asr.primitives.linear: oneDNN's GEMM for the spiking layers, against torch's own linear."""

import pytest
import torch
import torch.nn.functional as F

from snn_asr.primitives import linear as linear_module
from snn_asr.primitives.linear import ONEDNN_MIN_MACS, PACK_MIN_USES, linear, matmul_nt, pack, uses_onednn
from snn_asr.primitives.workspace import Workspace

needs_onednn = pytest.mark.skipif(
    linear_module._ONEDNN is None, reason="this torch build has no oneDNN linear"
)


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_with_gradients(bias):
    torch.manual_seed(0)
    x = torch.randn(3, 70, 64, requires_grad=True)  # 210 x 64 x 110 multiply-adds: oneDNN
    w = torch.randn(110, 64, requires_grad=True)
    b = torch.randn(110, requires_grad=True) if bias else None
    weights = torch.randn(3, 70, 110)
    assert uses_onednn(x, w)
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
    x, w = torch.randn(128, 128), torch.randn(128, 128, requires_grad=True)
    (gw,) = torch.autograd.grad(linear(x, w).sum(), [w])
    torch.testing.assert_close(gw, x.sum(0).expand(128, 128), rtol=1e-4, atol=1e-4)


@needs_onednn
def test_without_a_graph_the_same_numbers():
    """No gradient needed: the oneDNN call without the autograd Function, bit for bit the same."""
    torch.manual_seed(5)
    x, w, b = torch.randn(4, 60, 64), torch.randn(110, 64, requires_grad=True), torch.randn(110)
    with_graph = linear(x, w, b)
    with torch.no_grad():
        without = linear(x, w, b)
    assert with_graph.grad_fn is not None and without.grad_fn is None
    assert torch.equal(with_graph, without)


def test_small_products_stay_on_torch():
    x, w = torch.randn(1, 40), torch.randn(1100, 40)
    assert x.shape[0] * w.numel() < ONEDNN_MIN_MACS
    assert not uses_onednn(x, w)
    assert torch.equal(linear(x, w), F.linear(x, w))
    assert not pack(w, 1, uses=1000).is_mkldnn


@needs_onednn
@pytest.mark.parametrize(
    "rows, inputs, outputs", [(16, 550, 1100), (16, 1100, 550), (8, 256, 512), (1, 1024, 1100)]
)
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
    x, w = torch.randn(128, 200).t(), torch.randn(64, 128)
    assert uses_onednn(x, w)
    torch.testing.assert_close(linear(x, w), x @ w.t(), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_output_in_row_blocks_changes_no_bit(monkeypatch):
    """The output is written in blocks of rows (into a reused buffer): the same bits as one call."""
    torch.manual_seed(6)
    x, w, b = torch.randn(5, 61, 40), torch.randn(1100, 40), torch.randn(1100)
    whole = linear_module._ONEDNN(x.reshape(-1, 40), w, b, "none", [], "").view(5, 61, 1100)
    monkeypatch.setattr(linear_module, "CHUNK_BYTES", 7 * 1100 * 4)  # 7 rows a block, 305 rows
    workspace = Workspace()
    x.requires_grad_()
    out = linear(x, w, b, workspace)
    assert torch.equal(out, whole)
    ptr = out.data_ptr()
    (gx,) = torch.autograd.grad(out.sum(), [x])
    torch.testing.assert_close(gx, w.sum(0).expand_as(x), rtol=1e-4, atol=1e-4)
    del out, gx
    assert linear(x, w, b, workspace).data_ptr() == ptr  # the next step reuses the buffer
