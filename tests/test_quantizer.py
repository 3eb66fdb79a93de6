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


def frames(*maxima: float) -> torch.Tensor:
    """A (batch 1, time, features 2) sequence whose frames have the given ``max|V|``."""
    return torch.tensor([[[m, -m / 2] for m in maxima]])


def test_running_scale_is_bias_corrected_ema_and_frozen_in_eval():
    q = SpikeQuantizer(bits=6, threshold=3, momentum=0.9)
    q(frames(0.5, 4.0))  # no scale yet: the first batch folds frame by frame
    first = (0.9 * 0.1 * 0.5 + 0.1 * 4.0) / (1 - 0.9**2)  # bias-corrected
    assert float(q.scale) == pytest.approx(first, rel=1e-6) and int(q.steps) == 2
    q(frames(2.0, 1.0))  # then once per batch: the mean of the frame maxima
    expected = (0.9 * (0.9 * 0.1 * 0.5 + 0.1 * 4.0) + 0.1 * 1.5) / (1 - 0.9**3)
    assert float(q.scale) == pytest.approx(expected, rel=1e-6) and int(q.steps) == 3
    q.eval()
    q(frames(100.0))
    assert float(q.scale) == pytest.approx(expected, rel=1e-6)
    assert int(q.steps) == 3
    restored = SpikeQuantizer(bits=6, threshold=3, momentum=0.9)
    restored.load_state_dict(q.state_dict())
    assert float(restored.scale) == pytest.approx(expected, rel=1e-6)


def test_frame_form_folds_every_frame():
    q = SpikeQuantizer(bits=6, threshold=3, scale_update="frame")
    assert q.momentum == 0.99
    q(frames(0.5, 4.0))
    q(frames(2.0, 1.0))
    ema = 0.0
    for m in (0.5, 4.0, 2.0, 1.0):
        ema = 0.99 * ema + 0.01 * m
    assert int(q.steps) == 4
    assert float(q.scale) == pytest.approx(ema / (1 - 0.99**4), rel=1e-5)


@pytest.mark.parametrize("scale_update", ["batch", "frame"])
def test_padded_frames_never_reach_the_scale(scale_update):
    """The valid-frame mask keeps padding (here -50) out of the running scale (issue 15, item 2)."""
    torch.manual_seed(0)
    x = torch.randn(2, 12, 5)
    valid = torch.ones(2, 12, dtype=torch.bool)
    valid[1, 7:] = False
    padded = torch.where(valid[..., None], x, torch.tensor(-50.0))
    expected = torch.stack([x[valid[:, n], n].abs().max() for n in range(12)])  # valid rows only
    by_hand, masked = (SpikeQuantizer(4, 0, scale_update=scale_update) for _ in range(2))
    for _ in range(2):  # the first batch (frame by frame) and a later one
        by_hand.update(expected)
        masked(padded, valid)
    assert torch.equal(masked.scale, by_hand.scale) and int(masked.steps) == int(by_hand.steps)
    assert float(masked.scale) < 5


def test_the_last_batch_tail_barely_moves_the_batch_scale():
    """Once per batch, a quiet tail in the last batch moves M by its share of frames only."""
    torch.manual_seed(1)
    batches = [torch.randn(4, 300, 6) for _ in range(20)]
    quiet = batches[-1].clone()
    quiet[:, 150:] *= 0.05
    scales = {}
    for scale_update in ("batch", "frame"):
        for name, last in (("ordinary", batches[-1]), ("quiet tail", quiet)):
            q = SpikeQuantizer(6, 3, scale_update=scale_update)
            for batch in [*batches[:-1], last]:
                q(batch)
            scales[scale_update, name] = float(q.scale)
    change = {form: scales[form, "quiet tail"] / scales[form, "ordinary"] - 1 for form in ("batch", "frame")}
    assert abs(change["batch"]) < 0.06  # 150 of 300 frames quiet, weight 0.1: at most 5%
    assert change["frame"] < -0.5  # the paper's per-frame EMA: the quiet tail is all it remembers


def test_input_must_be_a_sequence():
    with pytest.raises(ValueError, match="batch, time"):
        SpikeQuantizer()(torch.ones(3))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="bits"):
        SpikeQuantizer(bits=0)
    with pytest.raises(ValueError, match="silences"):
        SpikeQuantizer(bits=2, threshold=1)
    with pytest.raises(ValueError, match="scale_update must be one of"):
        SpikeQuantizer(scale_update="epoch")
