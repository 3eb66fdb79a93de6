"""snn_asr.neurons.normalization: batch norm over valid frames, against torch's ``BatchNorm1d``."""

import pytest
import torch

from snn_asr.neurons.normalization import MaskedBatchNorm


def _stock(bn: MaskedBatchNorm, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """What the masked batch norm means: ``BatchNorm1d`` over the valid frames, zeros elsewhere."""
    out = torch.zeros_like(x)
    out[valid] = bn(x[valid])
    return out


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_bit_identical_to_batchnorm1d_over_valid_frames(padded, momentum):
    """Outputs, all three gradients and the running statistics, step after step, bit for bit."""
    torch.manual_seed(0)
    ours, stock = MaskedBatchNorm(6, momentum=momentum), torch.nn.BatchNorm1d(6, momentum=momentum)
    with torch.no_grad():
        ours.weight.uniform_()
        ours.bias.uniform_()
    stock.load_state_dict(ours.state_dict())
    for _ in range(3):
        x = torch.randn(3, 7, 6, requires_grad=True)
        x_stock = x.detach().clone().requires_grad_()
        valid = torch.ones(3, 7, dtype=torch.bool)
        if padded:
            valid[1, 4:] = valid[2, 2:] = False
        y = ours(x, valid)
        y_stock = _stock(stock, x_stock, valid)
        assert torch.equal(y, y_stock)
        g = torch.randn_like(y)
        y.backward(g)
        y_stock.backward(g)
        assert torch.equal(x.grad, x_stock.grad)
        assert torch.equal(ours.weight.grad, stock.weight.grad)
        assert torch.equal(ours.bias.grad, stock.bias.grad)
        ours.zero_grad()
        stock.zero_grad()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(ours, name), getattr(stock, name)), name


def test_eval_uses_running_statistics_frame_by_frame():
    torch.manual_seed(1)
    bn = MaskedBatchNorm(4)
    bn(torch.randn(2, 9, 4))
    bn.eval()
    x = torch.randn(2, 5, 4)
    expected = torch.nn.functional.batch_norm(
        x.reshape(-1, 4), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
    )
    assert torch.equal(bn(x), expected.reshape(x.shape))


def test_output_buffer_reused_across_steps_but_never_while_held():
    """Large outputs come from the module's workspace: the same memory next step, once released."""
    bn = MaskedBatchNorm(512)
    x = torch.randn(4, 200, 512, requires_grad=True)  # 1.6 MB: pooled
    first = bn(x)
    held = first.detach().clone()
    second = bn(x)  # ``first`` is still alive: not its memory
    assert second.data_ptr() != first.data_ptr()
    assert torch.equal(first, held)
    ptr = second.data_ptr()
    del second
    assert bn(x).data_ptr() == ptr  # released: reused


def test_too_few_valid_frames_is_a_clear_error():
    bn = MaskedBatchNorm(3)
    valid = torch.zeros(2, 4, dtype=torch.bool)
    valid[0, 0] = True
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(2, 4, 3), valid)
