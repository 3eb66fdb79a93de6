"""Event-driven streaming inference (snn_asr.fastpaths.event_driven) against the dense reference (eval)."""

import numpy as np
import pytest
import torch
from loop_choice import compiled_and_numba

from snn_asr import SpikingRNN
from snn_asr.fastpaths import event_driven
from snn_asr.fastpaths.event_driven import EventDrivenLayer, EventDrivenRNN
from snn_asr.fastpaths.native import compiled_loops
from snn_asr.neurons import NEURONS, NeuronState

kernel = compiled_and_numba(event_driven)  # which frame loop the event-driven layers run


def trained(rnn: SpikingRNN, dtype=torch.float64) -> SpikingRNN:
    """Non-trivial batch norm statistics and running scales, then eval mode, on the reference loop."""
    rnn.to(dtype).train()
    rnn.implementation = "reference"
    with torch.no_grad():
        for _ in range(3):
            rnn(torch.randn(4, 20, rnn.input_size, dtype=dtype) * 2)
    return rnn.eval()


@pytest.mark.parametrize("neuron", ["lif", "v1", "v2"])
@pytest.mark.parametrize("bits, threshold, input_bits", [(6, 3, None), (1, 0, 4)])
def test_equals_dense_reference_in_float64(neuron, bits, threshold, input_bits):
    torch.manual_seed(0)
    rnn = SpikingRNN(12, input_size=5, num_layers=2, neuron=neuron, bits=bits, threshold=threshold,
                     input_quant_bits=input_bits)  # fmt: skip
    rnn = trained(rnn)
    x = torch.randn(1, 40, 5, dtype=torch.float64) * 2
    with torch.no_grad():
        dense, hidden = rnn(x)
    stream = EventDrivenRNN(rnn)
    out = stream(x[0])
    assert (out != 0).any() and (out == 0).any()
    assert torch.equal(out, dense[0])
    torch.testing.assert_close(stream.hidden(), hidden, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("neuron", ["v1", "v2"])
def test_unsigned_codes_and_per_layer_thresholds_equal_the_dense_reference(neuron):
    torch.manual_seed(0)
    rnn = SpikingRNN(12, input_size=5, num_layers=2, neuron=neuron, threshold=[7, 15], unsigned=True)
    rnn = trained(rnn)
    x = torch.randn(1, 40, 5, dtype=torch.float64) * 2
    with torch.no_grad():
        dense, _ = rnn(x)
    out = EventDrivenRNN(rnn)(x[0])
    assert (out != 0).any() and (out == 0).any()
    assert torch.equal(out, dense[0])


def test_float32_agrees_within_rounding():
    """In float32 only the summation order differs: spikes agree, potentials to ~1e-5."""
    torch.manual_seed(1)
    rnn = trained(SpikingRNN(16, input_size=5, num_layers=2), dtype=torch.float32)
    x = torch.randn(1, 40, 5) * 2
    with torch.no_grad():
        dense, hidden = rnn(x)
    stream = EventDrivenRNN(rnn)
    out = stream(x[0])
    assert (out != dense[0]).float().mean() <= 0.01
    torch.testing.assert_close(stream.hidden(), hidden, rtol=1e-4, atol=1e-4)


def test_chunking_does_not_change_outputs():
    torch.manual_seed(2)
    rnn = trained(SpikingRNN(12, input_size=5, num_layers=3), dtype=torch.float32)
    x = torch.randn(37, 5) * 2
    whole = EventDrivenRNN(rnn)(x)
    stream = EventDrivenRNN(rnn)
    frames = torch.cat([stream(frame[None]) for frame in x])
    chunked = EventDrivenRNN(rnn)
    pieces = torch.cat([chunked(piece) for piece in x.split(6)])
    assert torch.equal(frames, whole)
    assert torch.equal(pieces, whole)
    stream.reset()
    assert torch.equal(stream(x), whole)


def test_continues_from_a_dense_state():
    torch.manual_seed(3)
    rnn = trained(SpikingRNN(12, input_size=5, num_layers=2))
    x = torch.randn(1, 30, 5, dtype=torch.float64) * 2
    with torch.no_grad():
        dense, _ = rnn(x)
        _, hidden = rnn(x[:, :13])
    stream = EventDrivenRNN(rnn)
    stream.load_hidden(hidden)
    assert torch.equal(stream(x[0, 13:]), dense[0, 13:])


def sparse(shape, rate, generator):
    """Values of either sign on a random ``rate`` fraction of entries, zeros elsewhere."""
    values = torch.randn(shape, generator=generator, dtype=torch.float64)
    count = round(rate * values.numel())
    keep = torch.zeros(values.numel(), dtype=torch.bool)
    keep[torch.randperm(values.numel(), generator=generator)[:count]] = True
    return values * keep.view(shape)


@pytest.mark.parametrize("kind", ["lif", "v1", "v2"])
@pytest.mark.parametrize("rate", [0.0, 0.05, 0.5, 1.0])
def test_sparse_path_at_spike_rates(kind, rate):
    """A layer's frames from a state whose last spikes, and from inputs, of a given non-zero rate."""
    g = torch.Generator().manual_seed(4)
    neuron = NEURONS[kind](40, 20).double().train()
    with torch.no_grad():
        neuron(torch.randn(4, 10, 40, dtype=torch.float64))
    neuron.eval()
    layer = EventDrivenLayer(neuron)
    x = sparse((3, 40), rate, g)
    state = NeuronState(*(torch.randn(1, 20, generator=g, dtype=torch.float64) for _ in range(2)),
                        sparse((1, 20), rate, g))  # fmt: skip
    layer.current, layer.voltage, layer.spikes = (s[0].numpy().copy() for s in state)
    out = layer(x.numpy())
    with torch.no_grad():
        dense, final = neuron(x[None], state)
    np.testing.assert_array_equal(out, dense[0].numpy())
    for got, want in zip((layer.current, layer.voltage, layer.spikes), final):
        np.testing.assert_allclose(got, want[0].numpy(), rtol=1e-12, atol=1e-12)
    first = int((x[0] != 0).sum()) + (int((state.spikes != 0).sum()) if kind == "v2" else 0)
    later = int((x[1:] != 0).sum()) + (int((dense[0, :-1] != 0).sum()) if kind == "v2" else 0)
    assert layer.events[0] == first + later  # work done = non-zero inputs and spikes gathered


def test_refuses_what_it_cannot_stream():
    rnn = SpikingRNN(4, input_size=3)
    with pytest.raises(ValueError, match="eval mode"):
        EventDrivenRNN(rnn)
    with pytest.raises(ValueError, match="bidirectional"):
        EventDrivenRNN(SpikingRNN(4, input_size=3, bidirectional=True).eval())


@pytest.mark.parametrize("neuron", ["lif", "v1", "v2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel", ["compiled"], indirect=True)  # compares the two kernels once
def test_compiled_equals_numba_bit_for_bit(kernel, neuron, dtype, monkeypatch):
    """Layers wide enough that the compiled loop splits each frame's neurons over 2 threads."""
    torch.manual_seed(5)
    rnn = trained(SpikingRNN(300, input_size=40, num_layers=2, neuron=neuron), dtype=dtype)
    x = torch.randn(25, 40, dtype=dtype) * 2
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = []
        for loop in (compiled_loops, lambda: None):
            monkeypatch.setattr(event_driven, "compiled_loops", loop)
            stream = EventDrivenRNN(rnn)
            out = torch.cat([stream(x[:1]), stream(x[1:9]), stream(x[9:])])
            results.append((out, stream.hidden(), [layer.events[0] for layer in stream.layers]))
    finally:
        torch.set_num_threads(threads)
    (out, hidden, events), (out_numba, hidden_numba, events_numba) = results
    assert (out != 0).any() and (out == 0).any()
    assert torch.equal(out, out_numba) and torch.equal(hidden, hidden_numba) and events == events_numba
