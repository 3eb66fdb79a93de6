"""The fused recurrence (snn_asr.fastpaths.fused) against the reference: bit-identical forward, same grads.

Every test runs twice: with the compiled C++ time loops (snn_asr.fastpaths.native; skipped where they do
not build) and with the numba loop that stands in for them.
"""

import copy

import pytest
import torch
from loop_choice import compiled_and_numba

from snn_asr import SpikingRNN, dispatch
from snn_asr.dispatch import choose, run_layer
from snn_asr.fastpaths import fused
from snn_asr.fastpaths.fused import fused_forward, supports
from snn_asr.neurons import NEURONS, NeuronState, RecurrentGatedLIFNeuron

loops = compiled_and_numba(fused)  # which time loop the fused recurrence runs


SPIKES = [(6, 3), (3, 0), (1, 0)]  # (bits, threshold): the paper's, a coarse one, binary
MODES = [
    (True, "batch"),
    (True, "frame"),
    (False, "batch"),
]  # (train, scale_update); eval: M frozen either way


def padding(batch: int, time: int) -> torch.Tensor:
    valid = torch.ones(batch, time, dtype=torch.bool)
    valid[1, time * 2 // 3 :] = False
    valid[2, time // 4 :] = False
    return valid


def pair(kind, bits, threshold, train, dtype=torch.float32, dropout=0.3, scale_update="batch"):
    """A layer with non-trivial statistics and an identical copy that runs the reference loop."""
    layer = NEURONS[kind](5, 8, bits=bits, threshold=threshold, dropout=dropout, scale_update=scale_update)
    layer = layer.to(dtype)
    layer.train()
    with torch.no_grad():
        layer(torch.randn(4, 10, 5, dtype=dtype) * 2)
    layer.train(train)
    return layer, copy.deepcopy(layer)


def run(layer, x, state, valid, seed=7, implementation="fused"):
    torch.manual_seed(seed)  # the same dropout mask for both
    return run_layer(layer, x, state, valid, implementation)


def loss(out, state, weights):
    return (out * weights).sum() + sum((s * (k + 1.5)).sum() for k, s in enumerate(state))


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
@pytest.mark.parametrize("bits, threshold", SPIKES)
@pytest.mark.parametrize("train, scale_update", MODES)
@pytest.mark.parametrize("padded", [False, True])
def test_forward_is_bit_identical(kind, bits, threshold, train, scale_update, padded):
    torch.manual_seed(0)
    layer, reference = pair(kind, bits, threshold, train, scale_update=scale_update)
    x = torch.randn(3, 24, 5) * 2
    state = NeuronState(*(torch.randn(3, 8) * 0.3 for _ in range(3)))
    valid = padding(3, 24) if padded else None
    out, final = run(layer, x, state, valid)
    ref_out, ref_final = run(reference, x, state, valid, implementation="reference")
    assert (out != 0).any() and (out == 0).any()
    assert torch.equal(out, ref_out)
    for a, b in zip(final, ref_final):
        assert torch.equal(a, b)
    for a, b in zip(layer.buffers(), reference.buffers()):  # running scale (EMA, steps) and BN stats
        assert torch.equal(a, b)


@pytest.mark.parametrize("train", [True, False])
def test_paper_size_v2_is_bit_identical(train):
    """At 40 -> 550, batch 16, the products go through oneDNN with ``U`` packed once
    (:mod:`snn_asr.primitives.linear`)
    while the reference passes ``U`` plain each frame: spikes and states must still agree bit for bit."""
    torch.manual_seed(11)
    layer = RecurrentGatedLIFNeuron(40, 550, dropout=0.1).train(train)
    reference = copy.deepcopy(layer)
    x, valid = torch.randn(16, 40, 40), padding(16, 40)
    out, final = run(layer, x, None, valid)
    ref_out, ref_final = run(reference, x, None, valid, implementation="reference")
    assert 0.05 < (out != 0).float().mean() < 0.95
    assert torch.equal(out, ref_out)
    for a, b in zip(final, ref_final):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
@pytest.mark.parametrize("bits, threshold", SPIKES)
@pytest.mark.parametrize("train, scale_update", MODES)
def test_gradients_match_reference(kind, bits, threshold, train, scale_update):
    """Gradients to the input, every parameter (W, BN, U, tau) and the initial state, in float64."""
    torch.manual_seed(1)
    layer, reference = pair(kind, bits, threshold, train, dtype=torch.float64, scale_update=scale_update)
    x = (torch.randn(3, 20, 5, dtype=torch.float64) * 2).requires_grad_()
    state = [(torch.randn(3, 8, dtype=torch.float64) * 0.3).requires_grad_() for _ in range(3)]
    valid = padding(3, 20)
    weights = torch.randn(3, 20, 8, dtype=torch.float64)
    grads = []
    for module, implementation in ((layer, "fused"), (reference, "reference")):
        out, final = run(module, x, NeuronState(*state), valid, implementation=implementation)
        inputs = [x, *state, *module.parameters()]
        grads.append(torch.autograd.grad(loss(out, final, weights), inputs, allow_unused=True))
    for (name, _), a, b in zip([("x", 0)] * 4 + list(layer.named_parameters()), *grads):
        assert b is not None and a is not None, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=name)
    assert any(g.abs().sum() > 0 for g in grads[0][1:4])  # the gradient reaches the initial state


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
def test_first_batch_moves_the_scale_every_frame_then_once_per_batch(kind):
    """``scale_update="batch"``: with no scale yet the first batch folds each valid frame in (and
    fires at the scale as it moves); every later batch folds once and fires at a fixed scale."""
    torch.manual_seed(12)
    layer = NEURONS[kind](5, 8, dropout=0.2)
    reference = copy.deepcopy(layer)
    valid = padding(3, 16)
    for batch, steps in ((0, 16), (1, 17), (2, 18)):
        x = torch.randn(3, 16, 5) * 2
        out, final = run(layer, x, None, valid, seed=batch)
        ref_out, ref_final = run(reference, x, None, valid, seed=batch, implementation="reference")
        assert torch.equal(out, ref_out)
        for a, b in zip((*final, *layer.buffers()), (*ref_final, *reference.buffers())):
            assert torch.equal(a, b)
        assert int(layer.quantizer.steps) == steps


def test_straight_through_gradient_is_zero_outside_the_scale():
    """Voltages beyond the running scale pass no gradient through the spike function."""
    torch.manual_seed(2)
    layer, reference = pair("lif", 6, 3, train=False, dtype=torch.float64, dropout=0.0)
    x = (torch.randn(2, 6, 5, dtype=torch.float64) * 50).requires_grad_()  # drives |V| past M
    pairs = ((layer, "fused"), (reference, "reference"))
    g, ref_g = (torch.autograd.grad(run_layer(m, x, implementation=i)[0].sum(), x)[0] for m, i in pairs)
    torch.testing.assert_close(g, ref_g, rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        _, final = fused_forward(layer, x)
    assert (final.voltage.abs() > layer.quantizer.scale).any()


def test_float32_gradients_agree_to_rounding():
    torch.manual_seed(3)
    layer, reference = pair("v2", 6, 3, train=True)
    x = (torch.randn(4, 30, 5) * 2).requires_grad_()
    grads = []
    for module, implementation in ((layer, "fused"), (reference, "reference")):
        out, _ = run(module, x, None, None, implementation=implementation)
        grads.append(torch.autograd.grad(out.square().sum(), [x, module.u.weight]))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


@pytest.mark.parametrize("scale_update", ["batch", "frame"])
def test_frames_with_no_valid_row_leave_the_scale_alone(scale_update):
    torch.manual_seed(4)
    layer, reference = pair("v2", 6, 3, train=True, scale_update=scale_update)
    x = torch.randn(1, 12, 5)
    valid = torch.arange(12)[None] < 7
    out, _ = run(layer, x, None, valid)
    ref_out, _ = run(reference, x, None, valid, implementation="reference")
    assert torch.equal(out, ref_out)
    assert torch.equal(layer.quantizer.steps, reference.quantizer.steps)
    assert torch.equal(layer.quantizer.ema, reference.quantizer.ema)


@pytest.mark.parametrize("neuron", ["lif", "v1", "v2"])
@pytest.mark.parametrize("train", [True, False])
def test_chunk_boundaries(neuron, train):
    """Chunks carried through ``hx`` equal the reference run the same way (train: the scale runs on)
    and, in eval mode, the whole sequence at once (up to the rounding of ``W X``, whose matmul
    may block differently for a different number of frames)."""
    torch.manual_seed(5)
    fused = SpikingRNN(8, input_size=5, num_layers=2, neuron=neuron, dropout=0.2)
    with torch.no_grad():
        fused(torch.randn(4, 10, 5) * 2)
    fused.train(train)
    reference = copy.deepcopy(fused)
    reference.implementation = "reference"
    x = torch.randn(3, 33, 5) * 2
    results = []
    for model in (fused, reference):
        torch.manual_seed(6)
        with torch.no_grad():
            hx, pieces = None, []
            for chunk in x.split(10, dim=1):
                out, hx = model(chunk, hx=hx)
                pieces.append(out)
        results.append((torch.cat(pieces, 1), hx))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    if not train:
        with torch.no_grad():
            whole, final = fused(x)
        torch.testing.assert_close(whole, results[0][0])
        torch.testing.assert_close(final, results[0][1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spiking_rnn_bidirectional_padded_matches_reference(dtype):
    torch.manual_seed(8)
    fused = SpikingRNN(8, input_size=5, num_layers=2, bidirectional=True, dropout=0.1).to(dtype)
    reference = copy.deepcopy(fused)
    reference.implementation = "reference"
    x = (torch.randn(3, 17, 5, dtype=dtype) * 2).requires_grad_()
    lengths = torch.tensor([1.0, 0.7, 0.4])
    results = []
    for model in (fused, reference):
        torch.manual_seed(9)
        out, hidden = model(x, lengths=lengths)
        grads = torch.autograd.grad(out.sum() + hidden.square().sum(), [x, *model.parameters()])
        results.append((out, hidden, grads))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    scale = max(g.abs().max().item() for g in results[1][2])
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for a, b in zip(results[0][2], results[1][2]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol * scale)


def test_dispatch(monkeypatch):
    layer = RecurrentGatedLIFNeuron(3, 4)
    x = torch.randn(2, 5, 3)
    assert supports(layer, x)
    assert not supports(layer, x.half())
    assert choose(layer, x) == "fused" and choose(layer, x.half()) == "reference"

    class Custom(RecurrentGatedLIFNeuron):
        pass

    custom = Custom(3, 4)
    assert not supports(custom, x)
    assert choose(custom, x) == "reference"
    run_layer(custom, x)  # "auto" falls back to the reference
    with pytest.raises(ValueError, match="no fused recurrence"):
        run_layer(custom, x, implementation="fused")
    with pytest.raises(ValueError, match="implementation must be one of"):
        SpikingRNN(4, input_size=3, implementation="fast")
    rnn = SpikingRNN(4, input_size=3, num_layers=2)
    calls = []
    monkeypatch.setattr(dispatch, "fused_forward", lambda *a: calls.append(a) or fused_forward(*a))
    rnn(x)
    assert len(calls) == 2  # "auto": both layers fused
    rnn.implementation = "reference"
    rnn(x)
    assert rnn.implementation == "reference" and len(calls) == 2  # no layer ran fused


def test_no_grad_inference_matches():
    torch.manual_seed(10)
    layer, reference = pair("v2", 6, 3, train=False)
    x = torch.randn(2, 15, 5)
    with torch.no_grad():
        out, _ = fused_forward(layer, x)
    assert torch.equal(out, reference(x)[0])


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loops", ["compiled"], indirect=True)  # compares the two loops once
def test_compiled_and_numba_loops_agree_bit_for_bit(kind, dtype, loops, monkeypatch):
    """Spikes, state, running scale and every gradient, padded rows and a binary layer included."""
    torch.manual_seed(8)
    layers = []
    for bits, threshold, scale_update in ((6, 3, "batch"), (1, 0, "batch"), (6, 3, "frame")):
        layer, _ = pair(kind, bits, threshold, train=True, dtype=dtype, scale_update=scale_update)
        layers += [layer, copy.deepcopy(layer)]
    x = (torch.randn(3, 25, 5, dtype=dtype) * 2).requires_grad_()
    valid, weights = padding(3, 25), torch.randn(3, 25, 8, dtype=dtype)
    results = []
    for index, layer in enumerate(layers):
        with monkeypatch.context() as patch:
            if index % 2:
                patch.setattr(fused, "compiled_loops", lambda: None)
            out, final = run(layer, x, None, valid)
            grads = torch.autograd.grad(loss(out, final, weights), [x, *layer.parameters()])
        results.append((out, *final, layer.quantizer.ema, *grads))
    for compiled, numba in (results[0:2], results[2:4], results[4:6]):
        for a, b in zip(compiled, numba):
            assert torch.equal(a, b)
