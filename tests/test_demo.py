"""The encoder demo's calibration: batch-norm statistics settled before the ops are counted."""

import torch

from snn_asr import SpikingRNN
from snn_asr.demo import calibrate, fbank_features, speech_like_audio


def test_calibration_settles_the_batch_norm_statistics():
    """Layer 1 sees the same input every pass: its running variance must reach the input's."""
    torch.manual_seed(0)
    feats = fbank_features(torch.stack([speech_like_audio(0.5, seed=i) for i in range(2)]))
    model = SpikingRNN(32, input_size=40, num_layers=2)
    calibrate(model, feats)
    layer = model.layers[0]
    with torch.no_grad():
        target = layer.w(feats).flatten(0, 1).var(0)
    left = (layer.norm.running_var - target).abs() / (1.0 - target).abs()  # running_var starts at 1
    assert left.max() < 0.01, f"{left.max():.3f} of the way from the initial statistics still to go"
