"""SpikingRNN: streaming, padding, bidirectional, SpeechBrain integration, parameters, save/load."""

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from snn_asr import SpikingRNN
from snn_asr.ops import count_parameters

NEURONS = ["v2", "v1", "lif"]


def trained(rnn: SpikingRNN, steps: int = 3) -> SpikingRNN:
    """A few training-mode passes so batch norm and running scales hold non-trivial statistics."""
    rnn.train()
    for _ in range(steps):
        rnn(torch.randn(4, 25, rnn.input_size) * 2)
    return rnn.eval()


@pytest.mark.parametrize("neuron", NEURONS)
def test_streaming_in_chunks_equals_one_pass(neuron):
    torch.manual_seed(0)
    rnn = trained(SpikingRNN(12, input_size=6, num_layers=3, neuron=neuron))
    x = torch.randn(3, 41, 6) * 2
    with torch.no_grad():
        whole, final = rnn(x)
        hx, pieces = None, []
        for chunk in x.split(7, dim=1):
            out, hx = rnn(chunk, hx=hx)
            pieces.append(out)
    assert (whole != 0).any()
    assert torch.equal(torch.cat(pieces, 1), whole)
    assert torch.equal(hx, final)


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_leak(neuron, bidirectional):
    torch.manual_seed(1)
    rnn = trained(SpikingRNN(10, input_size=5, num_layers=2, neuron=neuron, bidirectional=bidirectional))
    short, long = torch.randn(1, 12, 5) * 2, torch.randn(1, 20, 5) * 2
    batch = torch.cat([torch.cat([short, torch.randn(1, 8, 5) * 50], 1), long])
    with torch.no_grad():
        alone, alone_state = rnn(short)
        together, state = rnn(batch, lengths=torch.tensor([12 / 20, 1.0]))
    assert torch.allclose(together[:1, :12], alone, atol=1e-6)
    assert torch.all(together[0, 12:] == 0)
    assert torch.allclose(state[:, :, :1], alone_state, atol=1e-6)


@pytest.mark.parametrize("input_quant_bits", [None, 4])
def test_padding_does_not_leak_into_training_statistics(input_quant_bits):
    """Padded frames reach no batch-norm statistic and no running scale, the input's included
    (issue 15, item 2: the input quantizer's scale took in the padding)."""
    torch.manual_seed(2)
    x = torch.randn(1, 15, 4)
    padded = torch.cat([x, torch.full((1, 10, 4), -50.0)], 1)
    a, b = (SpikingRNN(8, input_size=4, num_layers=2, input_quant_bits=input_quant_bits) for _ in range(2))
    b.load_state_dict(a.state_dict())
    for _ in range(2):  # the first batch (scales move frame by frame) and a later one
        out_a, _ = a(x)
        out_b, _ = b(padded, lengths=torch.tensor([0.6]))
        assert torch.allclose(out_a[0], out_b[0, :15], atol=1e-5)
    for (name, buf_a), buf_b in zip(a.named_buffers(), b.buffers()):
        if "norm" in name or "quantizer" in name:
            assert torch.allclose(buf_a.float(), buf_b.float(), atol=1e-5), name


@pytest.mark.parametrize("neuron", NEURONS)
def test_bidirectional_layers_read_both_directions(neuron):
    """As torch's LSTM(bidirectional=True): each layer above the first reads both directions of
    the one below; the state is (layers * 2, 3, batch, hidden), layer-major, direction-minor."""
    torch.manual_seed(3)
    rnn = trained(SpikingRNN(6, input_size=3, num_layers=2, neuron=neuron, bidirectional=True))
    assert [layer.input_size for layer in rnn.layers] == [3, 3, 12, 12]
    assert rnn.layers == [rnn.stacks[0][0], rnn.stacks[1][0], rnn.stacks[0][1], rnn.stacks[1][1]]
    x = torch.randn(2, 9, 3)
    with torch.no_grad():
        out, hidden = rnn(x)
        forward_1, state_f1 = rnn.stacks[0][0](x)
        backward_1, state_b1 = rnn.stacks[1][0](x.flip(1))
        both = torch.cat([forward_1, backward_1.flip(1)], -1)
        forward_2, state_f2 = rnn.stacks[0][1](both)
        backward_2, state_b2 = rnn.stacks[1][1](both.flip(1))
    assert (forward_2 != 0).any() and (backward_2 != 0).any()
    assert torch.equal(out, torch.cat([forward_2, backward_2.flip(1)], -1))
    for index, state in enumerate((state_f1, state_b1, state_f2, state_b2)):
        assert torch.equal(hidden[index], torch.stack(state)), index


def test_four_dimensional_input_is_flattened_like_speechbrain():
    rnn = SpikingRNN(7, input_shape=[2, 10, 3, 4]).eval()
    x = torch.randn(2, 10, 3, 4)
    with torch.no_grad():
        assert torch.equal(rnn(x)[0], rnn(x.reshape(2, 10, 12))[0])


def test_one_bit_layers_emit_real_binary_spikes():
    torch.manual_seed(4)
    rnn = trained(SpikingRNN(32, input_size=8, num_layers=2, bits=1))
    with torch.no_grad():
        out, _ = rnn(torch.randn(4, 30, 8) * 3)
    scale = rnn.stacks[0][1].quantizer.scale
    values = out.unique()
    assert len(values) == 2 and values[0] == 0 and torch.isclose(values[1], scale / 2)


def test_gradients_reach_all_parameters_and_hx():
    rnn = SpikingRNN(16, input_size=5, num_layers=2, neuron="v2", bits=4, threshold=1)
    hx = torch.zeros(2, 3, 3, 16)
    hx[:, 1] = 0.3
    hx.requires_grad_(True)
    out, _ = rnn(torch.randn(3, 20, 5) * 2, hx=hx)
    out.pow(2).sum().backward()
    for name, p in rnn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert hx.grad.abs().sum() > 0


def test_yaml_instantiation():
    hparams = load_hyperpyyaml("""
encoder: !new:snn_asr.SpikingRNN
    hidden_size: 8
    input_size: 5
    num_layers: 2
    neuron: v1
    bits: 4
    threshold: 1
""")
    enc = hparams["encoder"]
    assert isinstance(enc, SpikingRNN) and enc.neuron == "v1" and enc.bits == 4
    assert enc(torch.randn(2, 3, 5))[0].shape == (2, 3, 8)


@pytest.mark.parametrize("use_rnnp", [False, True])
def test_crdnn_swap_forward_and_backward(use_rnnp):
    from speechbrain.lobes.models.CRDNN import CRDNN

    hparams = load_hyperpyyaml(f"""
model: !new:speechbrain.lobes.models.CRDNN.CRDNN
    input_shape: [null, null, 20]
    cnn_blocks: 1
    cnn_channels: (4,)
    time_pooling: False
    rnn_class: !name:snn_asr.SpikingRNN
        neuron: v2
        bits: 6
        threshold: 3
    rnn_layers: 2
    rnn_neurons: 16
    rnn_bidirectional: True
    use_rnnp: {use_rnnp}
    dnn_blocks: 1
    dnn_neurons: 12
""")
    model = hparams["model"]
    assert isinstance(model, CRDNN)
    assert any(isinstance(m, SpikingRNN) for m in model.modules())
    out = model(torch.randn(2, 30, 20))
    assert out.shape == (2, 30, 12)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    "kind,expected",
    [("lstm", 3_718_000), ("gru", 2_788_500), ("v2", 1_859_000), ("v1", 649_000)],
)
def test_parameter_counts_match_the_paper_setup(kind, expected):
    import speechbrain.nnet.RNN as sb_rnn

    if kind == "lstm":
        model = sb_rnn.LSTM(550, input_size=40, num_layers=2)
    elif kind == "gru":
        model = sb_rnn.GRU(550, input_size=40, num_layers=2)
    else:
        model = SpikingRNN(550, input_size=40, num_layers=2, neuron=kind)
    assert count_parameters(model) == expected


@pytest.mark.parametrize("neuron", NEURONS)
def test_state_dict_round_trip(tmp_path, neuron):
    torch.manual_seed(5)
    rnn = trained(SpikingRNN(9, input_size=4, num_layers=2, neuron=neuron, input_quant_bits=4))
    torch.save(rnn.state_dict(), tmp_path / "enc.pt")
    fresh = SpikingRNN(9, input_size=4, num_layers=2, neuron=neuron, input_quant_bits=4).eval()
    fresh.load_state_dict(torch.load(tmp_path / "enc.pt"))
    x = torch.randn(2, 15, 4) * 2
    with torch.no_grad():
        assert torch.equal(rnn(x)[0], fresh(x)[0])
    assert any("quantizer.ema" in key for key in rnn.state_dict())


def test_bad_input_shapes_give_clear_errors():
    rnn = SpikingRNN(4, input_size=3)
    with pytest.raises(ValueError, match="built for 3 input features, got 5"):
        rnn(torch.randn(1, 2, 5))
    with pytest.raises(ValueError, match="neuron must be one of"):
        SpikingRNN(4, input_size=3, neuron="lstm")
    with pytest.raises(ValueError, match="input_shape or input_size"):
        SpikingRNN(4)
