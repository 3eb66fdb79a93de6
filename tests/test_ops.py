"""Op counting on inputs of known sparsity, and dense baselines."""

import pytest
import speechbrain.nnet.RNN as sb_rnn
import torch

from snn_asr import SpikingRNN
from snn_asr.ops import count_ops, dense_mults_per_frame


def identity_norm(layer):
    layer.norm.eps = 0.0
    layer.quantizer.ema.fill_(1.0)
    layer.quantizer.steps.fill_(10**6)
    layer.quantizer.momentum = 0.0


def test_input_events_cost_their_fan_out():
    rnn = SpikingRNN(7, input_size=5, neuron="v1")
    x = torch.zeros(2, 10, 5)
    x[0, 0, 1] = 1.0
    x[0, 3, :] = 2.0
    x[1, 9, 4] = -1.0  # on a padded frame: not counted
    report = count_ops(rnn, x, lengths=torch.tensor([1.0, 0.5]))
    (layer,) = report.layers
    assert layer.frames == 15
    assert layer.matrix_mults == 6 * 2 * 7
    assert layer.elementwise_mults == 15 * 7 * 5
    assert report.utterances == 2


def test_silent_first_layer_costs_nothing_downstream():
    rnn = SpikingRNN(6, input_size=4, num_layers=2, neuron="lif")
    first = rnn.stacks[0][0]
    with torch.no_grad():
        first.w.weight.zero_()
        first.w.bias.zero_()
    report = count_ops(rnn, torch.randn(3, 8, 4))
    l1, l2 = report.layers
    assert l1.spike_rate == 0.0
    assert l2.matrix_mults == 0
    assert l1.matrix_mults == 3 * 8 * 4 * 6


def test_always_spiking_v2_pays_recurrent_fan_out_per_previous_spike():
    hidden = 5
    rnn = SpikingRNN(hidden, input_size=3, neuron="v2")
    layer = rnn.stacks[0][0]
    identity_norm(layer)
    with torch.no_grad():
        layer.w.weight[:hidden].fill_(-100.0)  # forget gate closed: I = C
        layer.w.weight[hidden:].fill_(100.0)
        layer.w.bias.zero_()
        layer.u.weight.zero_()
    x = torch.ones(2, 10, 3)
    report = count_ops(rnn, x, lengths=torch.tensor([1.0, 0.5]))
    (entry,) = report.layers
    assert entry.spike_rate == 1.0
    input_mults = 15 * 3 * 2 * hidden
    recurrent_mults = (9 + 4) * hidden * 2 * hidden  # Y[n-1] exists for all but the first frame
    assert entry.matrix_mults == input_mults + recurrent_mults
    gru = dense_mults_per_frame("GRU", 3, hidden)
    assert report.gru_mults == pytest.approx(15 * sum(gru) / 2)
    assert report.ratio_to_gru == pytest.approx(report.mults / report.gru_mults)


def test_dense_baselines_count_every_real_frame():
    lstm = sb_rnn.LSTM(8, input_size=4, num_layers=2)
    report = count_ops(lstm, torch.randn(2, 10, 4), lengths=torch.tensor([1.0, 0.3]))
    matrix, elementwise = dense_mults_per_frame("LSTM", 4, 8, 2)
    assert matrix == 4 * 8 * (4 + 8) + 4 * 8 * (8 + 8)
    assert report.mults == pytest.approx(13 * (matrix + elementwise) / 2)
    gru_matrix, gru_elementwise = dense_mults_per_frame("GRU", 4, 8, 2)
    assert report.ratio_to_gru == pytest.approx((matrix + elementwise) / (gru_matrix + gru_elementwise))


def test_report_serialises_and_prints():
    report = count_ops(SpikingRNN(8, input_size=4, num_layers=2), torch.randn(2, 12, 4))
    data = report.to_dict()
    assert set(data["spike_rates"]) == {"stacks.0.0", "stacks.0.1"}
    assert "ratio" in report.table()
    assert data["energy_uj_per_utterance"] > 0


def test_count_ops_leaves_every_module_in_its_own_mode():
    """A wrapper in training mode around an eval-mode encoder (as SpikingASR's state carrier was)."""
    rnn = SpikingRNN(8, input_size=4, num_layers=2).eval()
    wrapper = torch.nn.Sequential(rnn)  # a fresh module: training=True
    rnn.stacks[0][1].train()  # and one layer in another mode than its parent
    modes = {name: module.training for name, module in wrapper.named_modules()}
    scales = [float(layer.quantizer.scale) for layer in rnn.layers]
    count_ops(wrapper, torch.randn(2, 12, 4))
    assert {name: module.training for name, module in wrapper.named_modules()} == modes
    assert [float(layer.quantizer.scale) for layer in rnn.layers] == scales  # counted in eval: M frozen


def test_binary_spikes_cost_accumulates_real_inputs_multiply_accumulates():
    """bits=1: layer 1's W multiplies real features (MAC); its U and layer 2 take binary spikes (AC)."""
    hidden, gates = 16, 2
    rnn = SpikingRNN(hidden, input_size=6, num_layers=2, neuron="v2", bits=1)
    x = torch.randn(3, 40, 6)  # no zero: every value enters W
    report = count_ops(rnn, x)
    l1, l2 = report.layers
    fbank_products = x.numel() * gates * hidden
    binary_products = (l1.matrix_mults - fbank_products) + l2.matrix_mults  # U of layer 1, W and U of layer 2
    assert l2.matrix_mults > 0 and l1.matrix_mults > fbank_products  # there were spikes to count
    elementwise = l1.elementwise_mults + l2.elementwise_mults
    pj = fbank_products * 4.6 + binary_products * 0.9 + elementwise * 3.7  # Horowitz, 45 nm
    assert report.energy_uj == pytest.approx(pj / 3 / 1e6)
    multi_bit = count_ops(SpikingRNN(hidden, input_size=6, num_layers=2, bits=6), x)
    assert all(layer.accumulates == 0 for layer in multi_bit.layers)  # multi-bit spikes: MACs


@pytest.mark.parametrize(
    "model",
    [
        sb_rnn.LSTM(8, input_size=4, num_layers=2),  # packs: truncates lengths * time
        sb_rnn.GRU(8, input_size=4),
        sb_rnn.LiGRU(8, input_shape=[None, None, 4]),  # never given lengths: pads counted before
        SpikingRNN(8, input_size=4, num_layers=2),
    ],
    ids=["LSTM", "GRU", "LiGRU", "SpikingRNN"],
)
def test_every_model_counts_the_same_frames(model):
    """Relative length 0.9087 of 200 frames is 181.74: every layer counts 182, as the report does."""
    report = count_ops(model, torch.randn(2, 200, 4), lengths=torch.tensor([1.0, 0.9087]))
    assert report.frames == 382 and [layer.frames for layer in report.layers] == [382] * len(report.layers)
    if isinstance(model, sb_rnn.LSTM):
        assert report.mults * 2 / report.frames == sum(dense_mults_per_frame("LSTM", 4, 8, 2))
