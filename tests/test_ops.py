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
