"""The spiking encoder swapped into SpeechBrain pipelines, each built from YAML.

For every pipeline: build the stock and the spiking version from hparams YAML,
check the spiking encoder is in place (spike rates reported, options passed,
weight-matrix count changed exactly as :func:`rnn_matrix_parameters` predicts),
train an epoch with ``sb.Brain``, decode (CTC greedy, plus the Transformer's
``S2STransformerGreedySearcher``), save with the ``Checkpointer``, recover into a
differently seeded model (outputs equal) and resume training.
"""

from __future__ import annotations

import doctest
import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.decoders.ctc import ctc_greedy_decode
from speechbrain.utils.callchains import lengths_arg_name

from snn_asr import SpikingRNN
from snn_asr.encoders.pipelines import SpikingTransformerASR, SpikingTransformerEncoder, rnn_matrix_parameters
from snn_asr.ops import count_ops, count_parameters

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
TOOL = ROOT / "tools" / "convert_hparams.py"
_spec = importlib.util.spec_from_file_location("convert_hparams", TOOL)
convert = importlib.util.module_from_spec(_spec)
sys.modules["convert_hparams"] = convert
_spec.loader.exec_module(convert)

OPTIONS = convert.Options(neuron="v2", bits=4, threshold=2)
TRANSFORMER_LINE = "Transformer: !new:speechbrain.lobes.models.transformer.TransformerASR.TransformerASR\n"
SPIKING_TRANSFORMER_LINE = "Transformer: !new:snn_asr.encoders.pipelines.SpikingTransformerASR\n"


# --------------------------------------------------------------------------- data and brains


@pytest.fixture(autouse=True)
def no_onednn():
    """oneDNN builds an LSTM/GRU primitive per new module and shape (seconds each on CPU); skip it here."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


def utterances(transformer: bool = False) -> DynamicItemDataset:
    """Two utterances of 0.20 s and 0.15 s noise with 3 random tokens each (bos 1 / eos 2 for seq2seq)."""
    g = torch.Generator().manual_seed(0)
    data = {}
    for i, samples in enumerate([3200, 2400]):
        low, high = (3, 8) if transformer else (1, 6)
        tokens = torch.randint(low, high, (3,), generator=g)
        entry = {"sig": 0.1 * torch.randn(samples, generator=g), "tokens": tokens}
        if transformer:
            entry["tokens_bos"] = torch.cat([torch.tensor([1]), tokens])
            entry["tokens_eos"] = torch.cat([tokens, torch.tensor([2])])
        data[f"utt{i}"] = entry
    dataset = DynamicItemDataset(data)
    dataset.set_output_keys(list(next(iter(data.values()))) + ["id"])
    return dataset


class CTCBrain(sb.Brain):
    """Features -> ``enc`` -> ``ctc_lin`` -> CTC, as SpeechBrain's CTC recipes do."""

    def encode(self, batch):
        wavs, wav_lens = batch.sig
        feats = self.modules.normalize(self.hparams.compute_features(wavs), wav_lens)
        enc = self.modules.enc
        out = enc(feats, lengths=wav_lens) if lengths_arg_name(enc.forward) else enc(feats)
        if isinstance(out, tuple):  # an RNN used as the encoder returns (output, hidden)
            out = out[0]
        return out, wav_lens

    def compute_forward(self, batch, stage):
        out, wav_lens = self.encode(batch.to(self.device))
        return self.hparams.log_softmax(self.modules.ctc_lin(out)), wav_lens

    def compute_objectives(self, predictions, batch, stage):
        p_ctc, wav_lens = predictions
        tokens, tokens_lens = batch.tokens
        if stage != sb.Stage.TRAIN:
            self.hyps = ctc_greedy_decode(p_ctc, wav_lens, blank_id=self.hparams.blank_index)
        return self.hparams.ctc_cost(p_ctc, tokens, wav_lens, tokens_lens)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.VALID:
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, min_keys=["loss"])


class TransformerBrain(CTCBrain):
    """CNN front end -> TransformerASR, joint CTC/attention loss, greedy seq2seq decoding."""

    def encode(self, batch):
        wavs, wav_lens = batch.sig
        feats = self.modules.normalize(self.hparams.compute_features(wavs), wav_lens)
        return self.modules.CNN(feats), wav_lens

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        src, wav_lens = self.encode(batch)
        tokens_bos, _ = batch.tokens_bos
        enc_out, pred = self.modules.Transformer(src, tokens_bos, wav_lens, pad_idx=self.hparams.pad_index)
        p_ctc = self.hparams.log_softmax(self.modules.ctc_lin(enc_out))
        p_seq = self.hparams.log_softmax(self.modules.seq_lin(pred))
        hyps = None
        if stage != sb.Stage.TRAIN:
            hyps, _, _, _ = self.hparams.greedy_search(enc_out.detach(), wav_lens)
        return p_ctc, p_seq, wav_lens, hyps

    def compute_objectives(self, predictions, batch, stage):
        p_ctc, p_seq, wav_lens, hyps = predictions
        tokens, tokens_lens = batch.tokens
        tokens_eos, tokens_eos_lens = batch.tokens_eos
        if stage != sb.Stage.TRAIN:
            self.hyps = hyps
            self.ctc_hyps = ctc_greedy_decode(p_ctc, wav_lens, blank_id=self.hparams.blank_index)
        ctc = self.hparams.ctc_cost(p_ctc, tokens, wav_lens, tokens_lens)
        seq = self.hparams.seq_cost(p_seq, tokens_eos, length=tokens_eos_lens)
        weight = self.hparams.ctc_weight
        return weight * ctc + (1 - weight) * seq


def load(text: str, folder: Path, **overrides) -> dict:
    return load_hyperpyyaml(text, {"output_folder": str(folder), **overrides})


def make_brain(hparams: dict, brain_cls: type[sb.Brain]) -> sb.Brain:
    return brain_cls(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"device": "cpu", "noprogressbar": True},
        checkpointer=hparams["checkpointer"],
    )


def fit(brain: sb.Brain, dataset: DynamicItemDataset) -> None:
    loader = {"batch_size": 2}
    brain.fit(
        brain.hparams.epoch_counter,
        dataset,
        dataset,
        progressbar=False,
        train_loader_kwargs=loader,
        valid_loader_kwargs=loader,
    )


@torch.no_grad()
def eval_outputs(brain: sb.Brain, dataset: DynamicItemDataset) -> tuple[torch.Tensor, ...]:
    batch = next(iter(sb.dataio.dataloader.make_dataloader(dataset, batch_size=2)))
    brain.modules.eval()
    return tuple(t for t in brain.compute_forward(batch, sb.Stage.TEST) if isinstance(t, torch.Tensor))


def spiking_modules(model: torch.nn.Module) -> list[SpikingRNN]:
    return [m for m in model.modules() if isinstance(m, SpikingRNN)]


def assert_decoded(hyps, batch: int = 2) -> None:
    assert len(hyps) == batch
    assert all(isinstance(tok, int) for hyp in hyps for tok in hyp)


def check_pipeline(
    stock_text: str,
    spiking_text: str,
    brain_cls: type[sb.Brain],
    predicted_change: int,
    spiking_rnns: int,
    tmp_path: Path,
    encoder_input,
    **overrides,
) -> sb.Brain:
    """Everything the issue asks of one pipeline; returns the resumed brain."""
    transformer = brain_cls is TransformerBrain
    dataset = utterances(transformer)
    stock = load(stock_text, tmp_path / "stock", **overrides)
    hparams = load(spiking_text, tmp_path / "spiking", **overrides)

    # The spiking encoder is in place, with the YAML's options, and nothing stock is left.
    rnns = spiking_modules(hparams["model"])
    assert len(rnns) == spiking_rnns
    stock_types = (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)
    assert not any(isinstance(m, stock_types) for m in hparams["model"].modules())
    measured = count_parameters(hparams["model"]) - count_parameters(stock["model"])
    assert measured == predicted_change

    # Trains (one epoch, parameters move, loss finite) and decodes.
    brain = make_brain(hparams, brain_cls)
    before = {k: v.clone() for k, v in hparams["model"].state_dict().items()}
    fit(brain, dataset)
    after = hparams["model"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    assert torch.isfinite(torch.tensor(brain.avg_train_loss))
    assert_decoded(brain.hyps)
    if transformer:
        assert_decoded(brain.ctc_hyps)

    # Spike rates are reported for every spiking layer.
    module, x, lengths = encoder_input(hparams, dataset)
    rates = count_ops(module, x, lengths).spike_rates()
    assert len(rates) == sum(len(r.layers) for r in rnns)
    assert all(0.0 <= r <= 1.0 for r in rates.values())
    assert any(r > 0 for r in rates.values())

    # Saves, and recovers into a model initialised from another seed: same outputs.
    reference = eval_outputs(brain, dataset)
    resumed = load(spiking_text, tmp_path / "spiking", **{**overrides, "seed": 999, "number_of_epochs": 2})
    brain2 = make_brain(resumed, brain_cls)
    fresh = resumed["model"].state_dict()
    assert not all(torch.equal(v, fresh[k]) for k, v in after.items() if v.is_floating_point())
    assert brain2.checkpointer.recover_if_possible() is not None
    assert all(torch.equal(a, b) for a, b in zip(reference, eval_outputs(brain2, dataset)))
    # ... and resumes: the recovered epoch counter runs only the second epoch.
    fit(brain2, dataset)
    assert resumed["epoch_counter"].current == 2
    # keep_only keeps the best and the most recent: one or two checkpoints, never three.
    assert len(brain2.checkpointer.list_checkpoints()) in (1, 2)
    return brain2


def features(hparams: dict, dataset: DynamicItemDataset) -> tuple[torch.Tensor, torch.Tensor]:
    batch = next(iter(sb.dataio.dataloader.make_dataloader(dataset, batch_size=2)))
    wavs, wav_lens = batch.sig
    hparams["normalize"].eval()
    return hparams["normalize"](hparams["compute_features"](wavs), wav_lens), wav_lens


def enc_input(hparams, dataset):
    feats, lens = features(hparams, dataset)
    return hparams["enc"], feats, lens


def swap_change(kind: str, input_size: int, hidden: int, layers: int, bidirectional: bool = False) -> int:
    """Predicted weight-matrix change when a ``kind`` RNN becomes a v2 ``SpikingRNN`` of the same size."""
    spiking = rnn_matrix_parameters("v2", input_size, hidden, layers, bidirectional)
    return spiking - rnn_matrix_parameters(kind, input_size, hidden, layers, bidirectional)


def converted(name: str, **kwargs) -> str:
    return convert.convert_text((FIXTURES / name).read_text(), OPTIONS, **kwargs).text


# --------------------------------------------------------------------------- pipelines

N_MELS, CNN_OUT = 20, 4 * 10  # fixtures: 20 Fbanks; CNN output 4 channels x 10 frequency bins


@pytest.mark.parametrize("use_rnnp", [False, True])
def test_crdnn(tmp_path, use_rnnp):
    """CRDNN with ``rnn_class: !name:snn_asr.SpikingRNN``, written by the conversion tool's CLI."""
    out = tmp_path / "crdnn_spiking.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOL),
            str(FIXTURES / "crdnn_ctc.yaml"),
            "-o",
            str(out),
            "--bits",
            "4",
            "--threshold",
            "2",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "!name:speechbrain.nnet.RNN.LSTM -> !name:snn_asr.SpikingRNN" in proc.stdout
    if use_rnnp:  # one single-layer RNN per layer, each followed by a projection to dnn_neurons (8)
        predicted = sum(swap_change("LSTM", n_in, 8, 1, True) for n_in in (CNN_OUT, 8))
    else:
        predicted = swap_change("LSTM", CNN_OUT, 8, 2, True)
    brain = check_pipeline(
        (FIXTURES / "crdnn_ctc.yaml").read_text(),
        out.read_text(),
        CTCBrain,
        predicted,
        2 if use_rnnp else 1,
        tmp_path,
        enc_input,
        use_rnnp=use_rnnp,
    )
    for rnn in spiking_modules(brain.hparams.model):
        assert (rnn.neuron, rnn.bits, rnn.threshold, rnn.bidirectional) == ("v2", 4, 2, True)


def test_plain_rnn_encoder(tmp_path):
    """``enc: !new:speechbrain.nnet.RNN.LSTM`` called with ``lengths`` -> ``SpikingRNN``."""
    predicted = swap_change("LSTM", N_MELS, 8, 2, True)
    check_pipeline(
        (FIXTURES / "rnn_ctc.yaml").read_text(),
        converted("rnn_ctc.yaml"),
        CTCBrain,
        predicted,
        1,
        tmp_path,
        enc_input,
    )


def test_after_cnn_front_end(tmp_path):
    """``ConvolutionFrontEnd`` -> RNN in a ``LengthsCapableSequential``: the GRU is converted in place."""
    predicted = swap_change("GRU", CNN_OUT, 8, 2)
    check_pipeline(
        (FIXTURES / "cnn_rnn_ctc.yaml").read_text(),
        converted("cnn_rnn_ctc.yaml"),
        CTCBrain,
        predicted,
        1,
        tmp_path,
        enc_input,
    )


def test_spiking_encoder_wrapper_after_cnn_front_end(tmp_path):
    """``snn_asr.encoders.pipelines.SpikingEncoder`` (front end + spiking stack + projection), same stack."""
    predicted = swap_change("GRU", CNN_OUT, 8, 2)
    check_pipeline(
        (FIXTURES / "cnn_rnn_ctc.yaml").read_text(),
        (FIXTURES / "cnn_spiking_encoder_ctc.yaml").read_text(),
        CTCBrain,
        predicted,
        1,
        tmp_path,
        enc_input,
    )


def transformer_input(hparams, dataset):
    """The spiking encoder's own input: CNN features through TransformerASR's source projection."""
    feats, lens = features(hparams, dataset)
    transformer = hparams["Transformer"]
    src = transformer.custom_src_module(hparams["CNN"](feats).flatten(2))
    return transformer.encoder, src, None


@pytest.mark.parametrize("encoder_module", ["transformer", "conformer"])
def test_transformer_encoder(tmp_path, encoder_module):
    """``TransformerASR`` -> ``SpikingTransformerASR`` by changing one line; the decoder is kept."""
    stock_text = (FIXTURES / "transformer_ctc_att.yaml").read_text()
    assert stock_text.count(TRANSFORMER_LINE) == 1
    spiking_text = stock_text.replace(TRANSFORMER_LINE, SPIKING_TRANSFORMER_LINE)
    d, ffn, layers = 16, 32, 2
    spiking = rnn_matrix_parameters("v2", d, d, layers) + d * d  # spiking stack + projection back to d_model
    if encoder_module == "transformer":  # self-attention (in 3d x d, out d x d) + feed-forward, per layer
        replaced = layers * (4 * d * d + 2 * d * ffn)
    else:  # the Conformer's own count, measured
        stock = load(stock_text, tmp_path / "count", encoder_module=encoder_module)
        replaced = count_parameters(stock["Transformer"].encoder)
    brain = check_pipeline(
        stock_text,
        spiking_text,
        TransformerBrain,
        spiking - replaced,
        1,
        tmp_path,
        transformer_input,
        encoder_module=encoder_module,
    )
    assert isinstance(brain.modules.Transformer, SpikingTransformerASR)
    assert isinstance(brain.modules.Transformer.encoder, SpikingTransformerEncoder)


# --------------------------------------------------------------------------- stock encoder classes

# Class -> the extra YAML arguments its recipes pass (QuasiRNN takes no re_init).
STOCK_CLASSES = {
    "LSTM": {},
    "GRU": {},
    "RNN": {"nonlinearity": "tanh"},
    "LiGRU": {"nonlinearity": "relu", "normalization": "batchnorm"},
    "SLiGRU": {
        "nonlinearity": "relu",
        "ff_normalization": "batchnorm",
        "recurrent_elementwise_affine": "False",
    },
    "QuasiRNN": {"zoneout": "0.0", "output_gate": "True"},
}


def stock_rnn_yaml(cls: str) -> str:
    text = (FIXTURES / "rnn_ctc.yaml").read_text()
    extra = "".join(f"    {k}: {v}\n" for k, v in STOCK_CLASSES[cls].items())
    if cls == "QuasiRNN":
        text = text.replace("    re_init: True\n", "")
    if cls in ("LiGRU", "SLiGRU"):  # a bidirectional LiGRU needs the batch size in input_shape
        text = text.replace("input_shape: [null, null,", "input_shape: [!ref <batch_size>, null,")
    tag = "enc: !new:speechbrain.nnet.RNN."
    return text.replace(f"{tag}LSTM\n", f"{tag}{cls}\n{extra}")


@pytest.mark.parametrize("cls", list(STOCK_CLASSES))
def test_stock_encoder_class_swapped(tmp_path, cls):
    """Each SpeechBrain RNN class as ``enc``: converted, trains and decodes, parameters as predicted."""
    stock_text = stock_rnn_yaml(cls)
    stock = load(stock_text, tmp_path / "stock")
    assert type(stock["enc"]).__name__ == cls
    result = convert.convert_text(stock_text, OPTIONS)
    for key in STOCK_CLASSES[cls]:  # options SpikingRNN does not have are commented out and reported
        assert f"    # {key}: " in result.text
        assert any(f"commented out '{key}:" in change for change in result.changes)
    hparams = load(result.text, tmp_path / "spiking")
    assert isinstance(hparams["enc"], SpikingRNN)
    predicted = swap_change(cls, N_MELS, 8, 2, True)
    assert count_parameters(hparams["model"]) - count_parameters(stock["model"]) == predicted
    brain = make_brain(hparams, CTCBrain)
    fit(brain, utterances())
    assert_decoded(brain.hyps)
    feats, lens = features(hparams, utterances())
    assert len(count_ops(hparams["enc"], feats, lens).spike_rates()) == 4


def test_crdnn_default_ligru_gets_rnn_class(tmp_path):
    """A CRDNN without ``rnn_class`` (SpeechBrain's default LiGRU) gets one added by the tool."""
    text = (FIXTURES / "crdnn_ctc.yaml").read_text().replace("    rnn_class: !ref <rnn_class>\n", "")
    text = text.replace("rnn_class: !name:speechbrain.nnet.RNN.LSTM\n", "")
    stock = load(text, tmp_path / "stock")
    assert type(stock["enc"].RNN).__name__ == "LiGRU"
    result = convert.convert_text(text, OPTIONS)
    assert any("CRDNN had no rnn_class" in change for change in result.changes)
    hparams = load(result.text, tmp_path / "spiking")
    assert isinstance(hparams["enc"].RNN, SpikingRNN) and hparams["enc"].RNN.bits == 4
    predicted = swap_change("LiGRU", CNN_OUT, 8, 2, True)
    assert count_parameters(hparams["model"]) - count_parameters(stock["model"]) == predicted


# --------------------------------------------------------------------------- drop-in interface


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_dropin_interface_matches_stock(cls):
    """Same 4-D flattening, ``lengths`` (padding ignored, zero output) and ``hx`` continuation as stock."""
    torch.manual_seed(0)
    shape = [3, 12, 5, 2]
    stock = getattr(sb.nnet.RNN, cls)(hidden_size=6, input_shape=shape, num_layers=2).eval()
    spiking = SpikingRNN(hidden_size=6, input_shape=shape, num_layers=2).eval()
    x = torch.randn(shape)
    lengths = torch.tensor([1.0, 0.75, 0.5])
    with torch.no_grad():
        for rnn in (stock, spiking):
            out, hidden = rnn(x, lengths=lengths)
            assert out.shape == (3, 12, 6)
            assert torch.all(out[1, 9:] == 0) and torch.all(out[2, 6:] == 0)  # padding outputs zero
            alone, _ = rnn(x[2:, :6])  # the short sequence without its padding
            torch.testing.assert_close(out[2:, :6], alone)
            first, hx = rnn(x[:, :5])  # continuing from the returned hidden state
            second, _ = rnn(x[:, 5:], hx=hx)
            whole, _ = rnn(x)
            torch.testing.assert_close(torch.cat([first, second], 1), whole)


@pytest.mark.parametrize("kind", ["v2", "v1", "lif"])
def test_bidirectional_spiking_counts_as_torch_lstm_layout(kind):
    """Layer 2 of a bidirectional stack reads both directions (2H inputs), as in torch's LSTM."""
    gates, recurrent = {"v2": (2, 8), "v1": (2, 0), "lif": (1, 0)}[kind]
    by_hand = 2 * gates * 8 * ((5 + recurrent) + (16 + recurrent) * 2)  # 3 layers, H = 8, 5 inputs
    rnn = SpikingRNN(8, input_size=5, num_layers=3, neuron=kind, bidirectional=True)
    assert rnn_matrix_parameters(kind, 5, 8, 3, bidirectional=True) == by_hand == count_parameters(rnn)


def test_spiking_transformer_rejects_bidirectional_causal():
    with pytest.raises(ValueError, match="causal"):
        SpikingTransformerASR(
            10,
            20,
            d_model=8,
            nhead=2,
            num_encoder_layers=1,
            num_decoder_layers=1,
            d_ffn=16,
            causal=True,
            rnn_bidirectional=True,
        )


# --------------------------------------------------------------------------- the conversion tool


def test_tool_knows_spikingrnn_arguments():
    assert set(convert.SPIKING_ARGS) == set(inspect.signature(SpikingRNN).parameters)


def test_tool_doctests():
    assert doctest.testmod(convert).failed == 0


@pytest.mark.parametrize("name", ["crdnn_ctc.yaml", "rnn_ctc.yaml", "cnn_rnn_ctc.yaml"])
def test_tool_changes_nothing_else(name):
    """Every input line survives in order, except the RNN tag; the only additions are the options."""
    source = (FIXTURES / name).read_text().splitlines()
    result = convert.convert_text("\n".join(source) + "\n", OPTIONS)
    output = result.text.splitlines()
    assert sum("speechbrain.nnet.RNN." in line for line in source) == 1
    rest = iter(output)
    for i, line in enumerate(source):  # source is a subsequence of output, tag line rewritten
        expected = convert.RNN_TAG.sub(lambda m: f"!{m['kind']}:snn_asr.SpikingRNN", line)
        assert expected in rest, f"line {i + 1} lost: {line!r}"
    added = [line.strip() for line in output if line not in source and "snn_asr.SpikingRNN" not in line]
    assert added == ["neuron: v2", "bits: 4", "threshold: 2"]


def test_tool_rewrites_other_layouts():
    text = (
        "# LM and decoder RNNs are not encoders\n"
        "lm_model: !new:speechbrain.lobes.models.RNNLM.RNNLM\n"
        "    output_neurons: 10\n"
        "    rnn_class: !name:speechbrain.nnet.RNN.LSTM\n"
        "flow: !new:speechbrain.nnet.RNN.GRU {input_size: 4, hidden_size: 3, nonlinearity: tanh}  # inline\n"
        "bare: !name:speechbrain.nnet.RNN.LiGRU\n"
        "layers:\n"
        "    - !new:speechbrain.nnet.RNN.RNN\n"
        "      input_size: 4\n"
        "      hidden_size: 3\n"
        "after: 1\n"
    )
    result = convert.convert_text(text, OPTIONS)
    assert result.converted == 3
    assert "rnn_class: !name:speechbrain.nnet.RNN.LSTM\n" in result.text
    assert any("left !name:speechbrain.nnet.RNN.LSTM alone (inside RNNLM)" in c for c in result.changes)
    assert (
        "flow: !new:snn_asr.SpikingRNN {input_size: 4, hidden_size: 3, neuron: v2, bits: 4, threshold: 2}"
        "  # inline\n"
    ) in result.text
    assert "bare: !name:snn_asr.SpikingRNN\n    neuron: v2\n" in result.text
    options = "      neuron: v2\n      bits: 4\n      threshold: 2\n"
    assert f"      hidden_size: 3\n{options}after: 1\n" in result.text
    convert.check_yaml(result.text)
    only = convert.convert_text(text, OPTIONS, keys=["bare"])
    assert only.converted == 1 and "flow: !new:speechbrain.nnet.RNN.GRU" in only.text


def test_tool_refuses_clearly(tmp_path):
    out = tmp_path / "out.yaml"
    missing = subprocess.run(
        [sys.executable, str(TOOL), str(tmp_path / "none.yaml"), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "no such hparams file" in missing.stderr
    no_rnn = subprocess.run(
        [sys.executable, str(TOOL), str(FIXTURES / "transformer_ctc_att.yaml"), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert no_rnn.returncode == 1 and no_rnn.stderr.count("\n") == 1
    assert "no SpeechBrain RNN encoder found" in no_rnn.stderr
    assert not out.exists()
    with pytest.raises(convert.ConversionError, match="positional"):
        convert.convert_text("enc: !new:speechbrain.nnet.RNN.LSTM\n    - 4\n")


@pytest.mark.parametrize("recipe", ["TIMIT", "LibriSpeech"])
def test_tool_gives_a_converted_recipe_its_own_folder_and_lengths(recipe, tmp_path):
    """The project's own ``lstm.yaml``: converted, it neither trains into the LSTM's folder nor
    feeds the spiking encoder padded frames; ``-o`` on the input itself is refused."""
    source = ROOT / "recipes" / recipe / "hparams" / "lstm.yaml"
    result = convert.convert_text(source.read_text(), OPTIONS)
    assert re.search(r"^model_name: lstm_snn_v2$", result.text, re.M)
    assert re.search(r"^encoder_lengths: True\b", result.text, re.M)
    assert not re.search(r"^encoder_lengths: False\b", result.text, re.M)
    copy = tmp_path / "lstm.yaml"
    copy.write_text(source.read_text())
    command = [sys.executable, str(TOOL), str(copy), "-o", str(copy)]
    same = subprocess.run(command, capture_output=True, text=True)
    assert same.returncode == 1 and "is the input file" in same.stderr and same.stderr.count("\n") == 1
    assert copy.read_text() == source.read_text()
