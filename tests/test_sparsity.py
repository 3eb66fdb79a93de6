"""The sparsity controls: unsigned spikes, the silent-band gradient rules, the spike-rate penalty.

Each control must leave today's models unchanged when off, the fused recurrence must agree with
the reference under each (run with the compiled loops and with numba), and the gradient rules
are checked against finite differences of the membrane's carry through silent frames.
"""

import copy

import pytest
import torch
from loop_choice import compiled_and_numba

from snn_asr import SpikingRNN
from snn_asr.dispatch import run_layer
from snn_asr.fastpaths import fused
from snn_asr.neurons import NEURONS, LIFNeuron, NeuronState, SpikeQuantizer
from snn_asr.neurons.quantizer import quantize
from snn_asr.recipes.sparsity import SpikeRatePenalty

loops = compiled_and_numba(fused)

OPTIONS = {  # the controls, each on alone and the two gradient rules together
    "unsigned": dict(unsigned=True),
    "firing": dict(surrogate="firing"),
    "detach_reset": dict(detach_reset=True),
    "firing+detach": dict(surrogate="firing", detach_reset=True),
}


def pair(kind, options, dtype=torch.float64, train=True):
    layer = NEURONS[kind](5, 8, bits=4, threshold=1, dropout=0.3, **options).to(dtype)
    layer.train()
    with torch.no_grad():
        layer(torch.randn(4, 10, 5, dtype=dtype) * 2)
    layer.train(train)
    return layer, copy.deepcopy(layer)


def gradients(layer, implementation, x, state, valid, weights):
    torch.manual_seed(7)  # the same dropout mask for both
    out, final = run_layer(layer, x, NeuronState(*state), valid, implementation)
    total = (out * weights).sum() + sum((s * (k + 1.5)).sum() for k, s in enumerate(final))
    inputs = [x, *state, *layer.parameters()]
    return out, final, torch.autograd.grad(total, inputs)


CASES = [(k, o) for k in ("lif", "v1", "v2") for o in sorted(OPTIONS) if not (k == "lif" and o == "unsigned")]
"""Every neuron under every control; LIF keeps the signed code (tested below)."""


@pytest.mark.parametrize("kind, option", CASES)
def test_fused_matches_the_reference_under_each_control(kind, option):
    torch.manual_seed(1)
    layer, reference = pair(kind, OPTIONS[option])
    x = (torch.randn(3, 20, 5, dtype=torch.float64) * 2).requires_grad_()
    state = [(torch.rand(3, 8, dtype=torch.float64) * 0.3).requires_grad_() for _ in range(3)]
    valid = torch.ones(3, 20, dtype=torch.bool)
    valid[1, 13:], valid[2, 5:] = False, False
    weights = torch.randn(3, 20, 8, dtype=torch.float64)
    out_f, final_f, grads_f = gradients(layer, "fused", x, state, valid, weights)
    out_r, final_r, grads_r = gradients(reference, "reference", x, state, valid, weights)
    assert torch.equal(out_f, out_r)
    for a, b in zip(final_f, final_r):
        assert torch.equal(a, b)
    for a, b in zip(grads_f, grads_r):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert torch.equal(layer.quantizer.scale, reference.quantizer.scale)


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
def test_each_control_off_leaves_the_model_unchanged(kind):
    """Defaults spelled out equal the defaults: spikes, states and gradients, bit for bit."""
    torch.manual_seed(2)
    plain = NEURONS[kind](5, 8)
    spelled = copy.deepcopy(plain)
    spelled.detach_reset = False
    spelled.quantizer.surrogate, spelled.quantizer.unsigned = "straight_through", False
    x = torch.randn(2, 15, 5, dtype=torch.float32, requires_grad=True)
    results = []
    for layer in (plain, spelled):
        out, final = layer(x)
        results.append((out, *final, *torch.autograd.grad((out * out).sum() + final.voltage.sum(), x)))
    for a, b in zip(*results):
        assert torch.equal(a, b)
    penalty = SpikeRatePenalty(plain, weight=0.0)
    plain(x)
    assert float(penalty.loss()) == 0.0  # weight 0: rates only, no loss


def test_unsigned_code_spends_every_level_on_magnitudes():
    v = torch.linspace(-1, 1, 2001)
    signed = quantize(v, torch.tensor(1.0), bits=3, threshold=0)
    unsigned = quantize(v, torch.tensor(1.0), bits=3, threshold=0, unsigned=True)
    assert len(torch.unique(signed)) == 7  # -3..3
    assert len(torch.unique(unsigned)) == 8  # 0..7: all 2**3 codes
    assert unsigned.min() == 0
    positive = v >= 0  # twice the resolution where v1/v2 membranes live
    assert len(torch.unique(unsigned[positive])) == 2 * len(torch.unique(signed[positive]))
    assert SpikeQuantizer(bits=3, threshold=6, unsigned=True).levels == 8
    with pytest.raises(ValueError, match="silences every level"):
        SpikeQuantizer(bits=3, threshold=3)
    with pytest.raises(ValueError, match="signed code"):
        LIFNeuron(3, 2, unsigned=True)


def test_v1_and_v2_membranes_never_go_negative():
    """What lets the unsigned code (and the fast paths' shared kernels) serve v1 and v2."""
    torch.manual_seed(3)
    for kind in ("v1", "v2"):
        layer = NEURONS[kind](4, 16, bits=6, threshold=0).train()
        _, voltages = layer(torch.randn(4, 200, 4) * 3), []
        state = None
        for _ in range(50):
            _, state = layer(torch.randn(4, 1, 4) * 3, state)
            voltages.append(state.voltage)
        assert torch.stack(voltages).min() >= -1e-6


def carry(kind: str, options: dict, implementation: str):
    """``V[T]`` as a function of ``V[0]`` for a layer held silent: a drive far below the threshold."""
    layer = NEURONS[kind](2, 3, bits=6, threshold=20, **options).double().eval()
    with torch.no_grad():
        layer.w.weight.zero_()
        layer.w.bias.fill_(-4.0 if kind != "lif" else 0.0)  # v1/v2: relu(-4) = 0 and a closed gate
        layer.quantizer.ema.fill_(3.0), layer.quantizer.steps.fill_(10**6)  # M = 3
    x = torch.zeros(1, 12, 2, dtype=torch.float64)

    def final_voltage(v0: torch.Tensor) -> torch.Tensor:
        state = NeuronState(torch.zeros_like(v0), v0, torch.zeros_like(v0))
        out, final = run_layer(layer, x, state, None, implementation)
        assert not out.any(), "the layer must stay silent"
        return final.voltage

    return final_voltage


@pytest.mark.parametrize("implementation", ["reference", "fused"])
@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, 0.0),
        (dict(surrogate="firing"), 1.0),
        (dict(detach_reset=True), 1.0),
        (OPTIONS["firing+detach"], 1.0),
    ],
    ids=["paper", "firing", "detach_reset", "both"],
)
def test_silent_band_gradient_against_finite_differences(implementation, kind, options, expected):
    """A silent neuron carries V forward exactly: dV[T]/dV[0] = 1 by finite differences. The
    paper's straight-through rule says 0; a firing-only surrogate or a detached reset says 1."""
    final_voltage = carry(kind, options, implementation)
    v0 = torch.tensor([[0.5, 1.0, 1.5]], dtype=torch.float64, requires_grad=True)
    h = 1e-4
    fd = (final_voltage(v0.detach() + h) - final_voltage(v0.detach() - h)) / (2 * h)
    torch.testing.assert_close(fd, torch.ones_like(fd))
    (grad,) = torch.autograd.grad(final_voltage(v0).sum(), v0)
    torch.testing.assert_close(grad, torch.full_like(grad, expected))


def test_penalty_rate_counts_valid_neuron_frames():
    enc = SpikingRNN(6, input_size=3, num_layers=1).train()
    penalty = SpikeRatePenalty(enc, weight=1.0)
    lengths = torch.tensor([1.0, 0.5])
    x = torch.randn(2, 10, 3) * 3
    out, _ = enc(x, lengths=lengths)
    by_hand = ((out[0] != 0).sum() + (out[1, :5] != 0).sum()) / (15 * 6)
    assert penalty.rates()["layers.0"] == pytest.approx(float(by_hand))
    penalty.loss()
    assert penalty.epoch_rates() == {"layers.0": round(float(by_hand), 4)}
    assert penalty.epoch_rates() == {}  # reset by the call


def test_penalty_gradient_is_the_mean_spike_level_and_stops_at_the_target():
    torch.manual_seed(4)
    enc = SpikingRNN(16, input_size=4, num_layers=2, implementation="reference").train()
    x = torch.randn(2, 30, 4) * 3
    penalty = SpikeRatePenalty(enc, weight=0.5)
    enc(x)
    levels = [penalty._captured[f"layers.{i}"][0] for i in range(2)]
    expected = 0.5 * sum(level.abs().mean() for level in levels)
    loss = penalty.loss()
    torch.testing.assert_close(loss, expected)
    grads = torch.autograd.grad(loss, list(enc.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    idle = SpikeRatePenalty(enc, weight=0.5, target=0.999)  # every layer under the target
    enc(x)
    assert float(idle.loss()) == 0.0
    first = SpikeRatePenalty(enc, weight=[0.5, 0.0])  # per layer: the first only
    enc(x)
    levels = first._captured["layers.0"][0]
    torch.testing.assert_close(first.loss(), 0.5 * levels.abs().mean())


def test_penalty_warmup_ramps_the_weight_from_zero():
    torch.manual_seed(4)
    enc = SpikingRNN(16, input_size=4, num_layers=2, implementation="reference").train()
    x = torch.randn(2, 30, 4) * 3
    full = SpikeRatePenalty(enc, weight=0.5)
    ramped = SpikeRatePenalty(enc, weight=0.5, warmup=4)
    assert [ramped.start_epoch(e) for e in (1, 2, 3, 5, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    for epoch, factor in ((1, 0.0), (3, 0.5), (6, 1.0)):
        ramped.start_epoch(epoch)
        enc(x)
        torch.testing.assert_close(ramped.loss(), factor * full.loss())
    assert ramped.epoch_rates() == full.epoch_rates()  # rates are tallied in the warm-up too


def test_penalty_makes_spikes_sparse():
    """Descending on the penalty alone lowers the spike rate."""
    torch.manual_seed(5)
    enc = SpikingRNN(32, input_size=8, num_layers=2).train()
    penalty = SpikeRatePenalty(enc, weight=1.0)
    optimizer = torch.optim.Adam(enc.parameters(), lr=1e-2)
    x = torch.randn(4, 40, 8) * 2
    rates = []
    for _ in range(30):
        enc(x)
        rates.append(sum(penalty.rates().values()))
        optimizer.zero_grad()
        penalty.loss().backward()
        optimizer.step()
    assert rates[-1] < 0.5 * rates[0]


def test_bad_penalty_settings_are_one_line():
    enc = SpikingRNN(4, input_size=2)
    with pytest.raises(ValueError, match="spike_rate_penalty must be >= 0"):
        SpikeRatePenalty(enc, weight=-1.0)
    with pytest.raises(ValueError, match="spike_rate_warmup a whole number of epochs"):
        SpikeRatePenalty(enc, weight=1.0, warmup=2.5)
    with pytest.raises(ValueError, match="spike_rate_penalty has 2 values for 1 layers"):
        SpikeRatePenalty(enc, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="one a layer"):
        SpikingRNN(4, input_size=2, num_layers=2, threshold=[1, 2, 3])


def test_per_layer_thresholds_and_bits():
    enc = SpikingRNN(4, input_size=2, num_layers=2, bits=[6, 4], threshold=[3, 1])
    assert [(q.bits, q.threshold) for q in (layer.quantizer for layer in enc.layers)] == [(6, 3), (4, 1)]


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_an_unsigned_code_is_the_signed_one_in_one_bit_fewer(kind):
    """v1/v2 spikes are never negative: 5 unsigned bits carry exactly what 6 signed bits do."""
    torch.manual_seed(6)
    signed = NEURONS[kind](5, 8, bits=6, threshold=3)
    unsigned = NEURONS[kind](5, 8, bits=5, threshold=3, unsigned=True)
    unsigned.load_state_dict(signed.state_dict())
    x = torch.randn(3, 30, 5) * 2
    for train in (True, False):
        signed.train(train), unsigned.train(train)
        assert torch.equal(signed(x)[0], unsigned(x)[0])
    assert torch.equal(signed.quantizer.scale, unsigned.quantizer.scale)
