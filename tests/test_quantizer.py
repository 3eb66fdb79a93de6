"""The multi-bit spike function: levels, threshold, one bit, straight-through gradient, running scale."""

import pytest
import torch

from snn_asr.neurons.quantizer import SpikeQuantizer, quantize, spike


def test_levels_are_integers_over_scale_and_clipped():
    scale = torch.tensor(2.0)
    v = torch.linspace(-5, 5, 1001)
    y = quantize(v, scale, bits=6, threshold=3)
    s = 32 * (1 - 1e-4) / 2.0
    q = y * s
    assert torch.allclose(q, q.round(), atol=1e-4)
    assert q.abs().max().round() == 31  # 2**(bits-1) - 1 levels per sign
    assert set(q.round().abs().unique().tolist()) == {0.0, *map(float, range(4, 32))}


def test_firing_threshold_is_threshold_plus_one_levels():
    scale = torch.tensor(1.0)
    step = 1.0 / (32 * (1 - 1e-4))
    below = torch.tensor([3.99 * step, -3.99 * step])
    above = torch.tensor([4.01 * step, -4.01 * step])
    assert torch.all(quantize(below, scale, 6, 3) == 0)
    assert torch.allclose(quantize(above, scale, 6, 3), torch.tensor([4 * step, -4 * step]))
    # threshold 0: the first level fires
    assert quantize(torch.tensor([1.01 * step]), scale, 6, 0).item() == pytest.approx(step)


def test_one_bit_gives_binary_spikes_at_half_scale():
    scale = torch.tensor(2.0)
    v = torch.tensor([-3.0, -1.5, 0.0, 0.99, 1.0, 1.7, 9.0])
    y = quantize(v, scale, bits=1, threshold=3)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_straight_through_gradient_zero_outside_range():
    v = torch.tensor([-3.0, -0.5, 0.01, 0.7, 1.0, 1.2], requires_grad=True)
    spike(v, torch.tensor(1.0), 6, 3).backward(torch.arange(1.0, 7.0))
    assert v.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 0.0]


def test_running_scale_is_bias_corrected_ema_and_frozen_in_eval():
    q = SpikeQuantizer(bits=6, threshold=3, momentum=0.9)
    q(torch.tensor([0.5, -4.0]))
    assert float(q.scale) == pytest.approx(4.0)  # bias correction: first step is the max itself
    q(torch.tensor([2.0]))
    expected = (0.9 * 0.1 * 4.0 + 0.1 * 2.0) / (1 - 0.9**2)
    assert float(q.scale) == pytest.approx(expected, rel=1e-6)
    q.eval()
    q(torch.tensor([100.0]))
    assert float(q.scale) == pytest.approx(expected, rel=1e-6)
    assert int(q.steps) == 2
    restored = SpikeQuantizer(bits=6, threshold=3, momentum=0.9)
    restored.load_state_dict(q.state_dict())
    assert float(restored.scale) == pytest.approx(expected, rel=1e-6)


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="bits"):
        SpikeQuantizer(bits=0)
    with pytest.raises(ValueError, match="silences"):
        SpikeQuantizer(bits=2, threshold=1)
