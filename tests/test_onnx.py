"""ONNX export and the onnxruntime backend: the scan recurrence, the graph, parity with torch, bad folders."""

from __future__ import annotations

import shutil

import pytest
import torch
from corpora import REPO

from snn_asr import SpikingRNN
from snn_asr.dispatch import run_layer
from snn_asr.neurons import NEURONS

ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'snn-asr[onnx]'")

from snn_asr.inference import SpikingASR  # noqa: E402
from snn_asr.inference.cli import main as snn_asr_main  # noqa: E402
from snn_asr.inference.onnx_export import quantize_int8  # noqa: E402

DIGITS = REPO / "pretrained" / "snn-digits"
AN4 = REPO / "pretrained" / "snn-an4"
FILES = sorted((REPO / "tests" / "data" / "fsdd" / "recordings").glob("*_jackson_*.wav"))[:6]


def export(model: str, out) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_onnx", REPO / "tools" / "export_onnx.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(model), str(out)]) == 0


@pytest.fixture(scope="module")
def onnx_digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "snn-digits-onnx"
    export(DIGITS, out)
    return out


SCANNED = [(k, False) for k in sorted(NEURONS)] + [("v1", True), ("v2", True)]  # (neuron, unsigned code)


@pytest.mark.parametrize("kind, unsigned", SCANNED)
@pytest.mark.parametrize("bits", [1, 6])
def test_the_scan_recurrence_equals_the_reference_loop(kind, unsigned, bits):
    torch.manual_seed(0)
    layer = NEURONS[kind](5, 7, bits=bits, threshold=0 if bits == 1 else 2, unsigned=unsigned)
    with torch.no_grad():
        run_layer(layer, torch.randn(3, 40, 5), implementation="reference")  # a running scale to fire at
    layer.eval()
    x = torch.randn(3, 25, 5)
    _, start = run_layer(layer, torch.randn(3, 4, 5), implementation="reference")
    reference = run_layer(layer, x, start, implementation="reference")
    scanned = run_layer(layer, x, start, implementation="scan")
    assert torch.equal(reference[0], scanned[0]) and reference[0].abs().sum() > 0
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(reference[1], scanned[1]))


def test_a_spiking_rnn_scans_as_it_loops_and_refuses_training_mode():
    torch.manual_seed(1)
    enc = SpikingRNN(8, input_size=6, num_layers=2, input_quant_bits=4).eval()
    x = torch.randn(2, 30, 6)
    expected = enc(x)
    enc.implementation = "scan"
    got = enc(x)
    assert torch.equal(expected[0], got[0]) and torch.allclose(expected[1], got[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="eval mode on unpadded sequences"):
        enc.train()(x)


def test_the_graph_takes_any_length_and_chunks_give_the_whole_files_output(onnx_digits):
    enc = SpikingASR.from_hparams(source=str(onnx_digits)).parts.enc
    torch.manual_seed(2)
    for frames in (1, 13, 301):
        log_probs, state = enc(torch.randn(1, frames, 40))
        assert log_probs.shape == (1, frames, 24) and state.shape == (2, 3, 1, 256)
    x = torch.randn(1, 200, 40)
    whole, state = enc(x)
    chunks, carried = [], None
    for start in range(0, 200, 37):
        out, carried = enc(x[:, start : start + 37], hx=carried)
        chunks.append(out)
    assert torch.equal(torch.cat(chunks, 1), whole) and torch.equal(carried, state)


def test_onnxruntime_and_torch_agree_at_the_spike_level_and_any_flip_is_float_rounding(onnx_digits):
    """Each spike of the last layer compared, every frame of the bundled model's files. Where a
    spike differs, find the first frame and lowest layer where any spike differs (an earlier
    layer's flip may reach the last layer frames later): up to that layer the membranes differ by
    float rounding only, the two runtimes summing in other orders. The membranes integrate that
    rounding, so it grows with the frames (1e-4 after 60 frames here, against a quantization step
    of 0.17), hence atol 1e-3. A membrane that close to a level flips its spike."""
    torch_asr, onnx_asr = (
        SpikingASR.from_hparams(source=str(DIGITS)),
        SpikingASR.from_hparams(source=str(onnx_digits)),
    )
    parts = torch_asr.parts
    frames = differing = 0
    for path in FILES:
        feats = parts.compute_features(torch_asr.load_audio(str(path))[None])
        with torch.no_grad():
            spikes, _ = parts.enc(parts.normalize(feats))
        log_probs, _, onnx_spikes = onnx_asr.parts.enc.run(feats)
        flips = (spikes != onnx_spikes).any(-1)[0]
        frames, differing = frames + flips.numel(), differing + int(flips.sum())
        if not flips.any():
            expected = parts.log_softmax(parts.ctc_lin(spikes))
            assert torch.allclose(log_probs, expected, atol=1e-4)
            continue
        last_layer_flip = int(flips.nonzero()[0]) + 1
        for first in range(1, last_layer_flip + 1):  # the first frame where any layer's spike differs
            with torch.no_grad():
                _, torch_state = parts.enc(parts.normalize(feats[:, :first]))
            _, onnx_state, _ = onnx_asr.parts.enc.run(feats[:, :first])
            if not torch.equal(torch_state[:, 2], onnx_state[:, 2]):  # each layer's last spikes
                break
        differs = [not torch.equal(a, b) for a, b in zip(torch_state[:, 2], onnx_state[:, 2])]
        upto = differs.index(True) + 1  # the layers below the first that flipped saw the same input
        voltages = torch_state[:upto, 1], onnx_state[:upto, 1]
        assert torch.allclose(*voltages, rtol=1e-4, atol=1e-3)
    print(f"onnxruntime vs torch: {differing} of {frames} frames with a spike differing ({len(FILES)} files)")
    assert differing < frames / 2


def test_transcribe_backend_onnxruntime_gives_torchs_transcripts_in_every_format(
    onnx_digits, capsys, tmp_path
):
    outputs = {}
    for backend, model in (("torch", DIGITS), ("onnxruntime", onnx_digits)):
        status = snn_asr_main(
            ["transcribe", str(model), *map(str, FILES), "--backend", backend, "--format", "all",
             "--output-dir", str(tmp_path / backend)]
        )  # fmt: skip
        assert status == 0, capsys.readouterr().err
        outputs[backend] = {p.name: p.read_text() for p in sorted((tmp_path / backend).iterdir())}
    assert outputs["torch"] == outputs["onnxruntime"] and len(outputs["torch"]) == 6 * len(FILES)


def bad_folder(onnx_digits, tmp_path, damage: str):
    folder = tmp_path / "bad"
    shutil.copytree(onnx_digits, folder)
    graph = folder / "model.onnx"
    if damage == "truncated":
        graph.write_bytes(graph.read_bytes()[:5000])
    elif damage == "garbage":
        graph.write_bytes(b"\x08garbage" * 64)
    elif damage == "missing":
        graph.unlink()
    elif damage == "mismatched":
        shutil.copyfile(AN4 / "tokenizer.ckpt", folder / "tokenizer.ckpt")  # 31 tokens, the graph's 24
    return folder


@pytest.mark.parametrize(
    "damage, said",
    [
        ("truncated", "is not a loadable ONNX graph"),
        ("garbage", "is not a loadable ONNX graph"),
        ("missing", "is a torch model folder"),  # no model.onnx left: not an ONNX folder any more
        ("mismatched", "outputs 24 tokens, the tokenizer has 31"),
    ],
)
def test_a_broken_or_mismatched_onnx_folder_is_one_error_line(onnx_digits, tmp_path, capsys, damage, said):
    folder = bad_folder(onnx_digits, tmp_path, damage)
    status = snn_asr_main(["transcribe", str(folder), str(FILES[0]), "--backend", "onnxruntime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ") and said in err[0], err


def test_each_backend_refuses_the_other_kind_of_folder_in_one_line(onnx_digits, capsys):
    assert snn_asr_main(["transcribe", str(onnx_digits), str(FILES[0]), "--backend", "torch"]) == 2
    assert "pass --backend onnxruntime" in capsys.readouterr().err
    assert snn_asr_main(["transcribe", str(DIGITS), str(FILES[0]), "--backend", "onnxruntime"]) == 2
    assert "python tools/export_onnx.py" in capsys.readouterr().err


def test_an_int8_copy_loads_and_transcribes(onnx_digits, tmp_path):
    int8 = quantize_int8(onnx_digits, tmp_path / "int8")
    assert int8.stat().st_size < (onnx_digits / "model.onnx").stat().st_size
    texts = [SpikingASR.from_hparams(source=str(int8.parent)).transcribe_file(str(f)) for f in FILES]
    assert all(isinstance(t, str) for t in texts) and any(texts)


def test_the_folder_carries_sherpa_onnx_metadata_and_tokens(onnx_digits):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_digits / "model.onnx")).metadata_props}
    assert meta["vocab_size"] == "24" and meta["subsampling_factor"] == "1" and meta["normalize_type"] == ""
    tokens = (onnx_digits / "tokens.txt").read_text().splitlines()
    assert tokens[0] == "<blk> 0" and len(tokens) == 24


def test_report_on_the_onnxruntime_backend_says_it_has_no_op_counts(onnx_digits, capsys):
    assert snn_asr_main(["transcribe", str(onnx_digits), str(FILES[0]), "--report"]) == 0
    assert "no op counts (the encoder is not torch's here" in capsys.readouterr().err


def test_an_onnx_folder_keeps_the_torch_folders_rnnlm_and_decodes_with_it(tmp_path, capsys):
    """The LMs stay decoders' (kenlm, the torch RNNLM): the ONNX copy of pretrained/snn-an4 re-ranks
    its N-best with the same RNNLM, so it decodes the AN4 samples as the torch folder does."""
    out = tmp_path / "snn-an4-onnx"
    export(AN4, out)
    capsys.readouterr()  # the exporter's "wrote ..." line
    assert (out / "rnnlm.ckpt").read_bytes() == (AN4 / "rnnlm.ckpt").read_bytes()
    assert SpikingASR.from_hparams(source=str(out)).folder_rnnlm() is not None
    clips = sorted((REPO / "tests" / "data" / "an4-samples").glob("*.wav"))
    texts = {}
    for name, model in (("torch", AN4), ("onnx", out)):
        assert snn_asr_main(["transcribe", str(model), *map(str, clips)]) == 0
        texts[name] = capsys.readouterr().out
    assert texts["onnx"] == texts["torch"] and len(texts["torch"].splitlines()) == len(clips)
