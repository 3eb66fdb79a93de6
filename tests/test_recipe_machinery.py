"""The shared recipe machinery, function by function: units and their stamps, special ids, sorting, DDP.

Each test builds tiny manifests in a temp folder (no corpus needed); the recipes run end to end in
``test_timit_recipe.py``, ``test_librispeech_recipe.py`` and the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.dataset import DynamicItemDataset

from snn_asr.dataio import DataError, atomic_write_text, write_manifest
from snn_asr.recipes.brain import ASRBrain
from snn_asr.recipes.data import label_units, order_training_set, subword_units
from snn_asr.recipes.ngram import arpa_from_manifest

ROOT = Path(__file__).resolve().parents[1]
IDS = {"blank_index": 0, "bos_index": 1, "eos_index": 2, "unk_index": 3}


def manifest(path: Path, column: str, texts: list[str]) -> Path:
    rows = [
        {"ID": f"u{i}", "duration": 1.0 + i, "wav": f"/d/u{i}.wav", column: t} for i, t in enumerate(texts)
    ]
    return write_manifest(rows, path)


def tokenizer_hparams(save: Path, vocab_size: int = 11) -> dict:
    return {"save_folder": save, "vocab_size": vocab_size, "token_type": "unigram", **IDS}


def test_changed_training_transcripts_make_a_new_tokenizer_and_ngram(tmp_path):
    train = manifest(tmp_path / "train.csv", "wrd", ["ONE TWO", "TWO ONE ONE", "TWO"])
    units = subword_units(tokenizer_hparams(tmp_path))
    model = Path(units.model_file)
    before, made = units.vocabulary(), model.stat().st_mtime_ns
    arpa = arpa_from_manifest(train, "wrd", 2, tmp_path / "2gram.arpa")
    lm_before = arpa.read_text()
    assert subword_units(tokenizer_hparams(tmp_path)).vocabulary() == before
    assert model.stat().st_mtime_ns == made  # the same transcripts: reloaded, not remade
    manifest(train, "wrd", ["SIX SEVEN", "SEVEN SIX SIX", "SEVEN"])  # other splits, same output folder
    after = subword_units(tokenizer_hparams(tmp_path)).vocabulary()
    assert "▁SIX" in after or "S" in after, after
    assert not {"▁ONE", "▁TWO", "W"} & set(after), after
    lm_after = arpa_from_manifest(train, "wrd", 2, tmp_path / "2gram.arpa").read_text()
    assert "SEVEN" in lm_after and "ONE" not in lm_after and "ONE" in lm_before


def test_a_stale_tokenizer_under_checkpoints_is_refused_in_one_line(tmp_path):
    train = manifest(tmp_path / "train.csv", "wrd", ["ONE TWO", "TWO ONE ONE", "TWO"])
    subword_units(tokenizer_hparams(tmp_path))
    sb.utils.checkpoints.Checkpointer(tmp_path).save_checkpoint()  # a model trained with it
    manifest(train, "wrd", ["SIX SEVEN", "SEVEN SIX SIX", "SEVEN"])
    with pytest.raises(DataError) as err:
        subword_units(tokenizer_hparams(tmp_path))
    message = str(err.value)
    assert "11_unigram.model" in message and "(changed: transcripts)" in message
    assert "pass a new --output_folder" in message and "\n" not in message


@pytest.mark.parametrize("trained", [False, True])
def test_a_corrupt_tokenizer_is_made_again_or_refused_under_checkpoints(tmp_path, trained, caplog):
    manifest(tmp_path / "train.csv", "wrd", ["ONE TWO", "TWO ONE ONE", "TWO"])
    model = Path(subword_units(tokenizer_hparams(tmp_path)).model_file)
    good = model.read_bytes()
    if trained:
        sb.utils.checkpoints.Checkpointer(tmp_path).save_checkpoint()  # a model trained with it
    model.write_bytes(good[: len(good) // 2])  # cut short by a full disk, say
    if trained:
        with pytest.raises(DataError) as err:
            subword_units(tokenizer_hparams(tmp_path))
        message = str(err.value)
        assert "11_unigram.model" in message and "is corrupt (not a sentencepiece model)" in message
        assert "restore it" in message and "\n" not in message
        return
    units = subword_units(tokenizer_hparams(tmp_path))
    assert model.read_bytes() == good and units.encode("ONE TWO")  # remade: sentencepiece is deterministic
    assert any("is corrupt (not a sentencepiece model); made again" in r.message for r in caplog.records)


@pytest.mark.parametrize("trained", [False, True])
def test_a_corrupt_label_encoder_is_written_again_or_refused_under_checkpoints(tmp_path, trained):
    manifest(tmp_path / "train.csv", "phn", ["sil a b sil"])
    hparams = {"save_folder": tmp_path, "blank_index": 0, "output_neurons": 4}
    encoder = tmp_path / "label_encoder.txt"
    label_units(hparams, "phn")
    good = encoder.read_text()
    if trained:
        sb.utils.checkpoints.Checkpointer(tmp_path).save_checkpoint()
    encoder.write_bytes(b"'a' => \x00\xff garbage\n")
    if trained:
        with pytest.raises(DataError, match="label_encoder.txt.* is corrupt .*restore it"):
            label_units(hparams, "phn")
    else:
        assert len(label_units(hparams, "phn").vocabulary()) == 4 and encoder.read_text() == good


def epoch_record(epoch: int) -> dict:
    stats = {"loss": 2.0, "error_rate": 50.0}
    return {"epoch": epoch, "lr": 1.0, "train_loss": 3.0, "train_seconds": 1.0, "stats": stats}


def test_a_write_that_dies_before_its_rename_leaves_the_old_file(tmp_path, monkeypatch):
    history = tmp_path / "history.json"
    atomic_write_text(history, "[1]")
    monkeypatch.setattr(os, "replace", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(history, "[1, 2]")
    assert history.read_text() == "[1]" and [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_history_appends_epochs_and_sets_an_unreadable_one_aside(tmp_path, caplog):
    brain = SimpleNamespace(hparams=SimpleNamespace(output_folder=str(tmp_path)))
    ASRBrain.record_epoch(brain, epoch_record(1))
    ASRBrain.record_epoch(brain, epoch_record(2))
    history = tmp_path / "history.json"
    assert [h["epoch"] for h in json.loads(history.read_text())] == [1, 2]
    history.write_text("")  # what a kill in the middle of a plain write_text left (CI, stop 26)
    ASRBrain.record_epoch(brain, epoch_record(3))
    assert [h["epoch"] for h in json.loads(history.read_text())] == [3]
    assert (tmp_path / "history.json.unreadable").read_text() == ""
    assert "history.json was not readable JSON: set aside as history.json.unreadable" in caplog.text


@pytest.mark.parametrize("spec_augment", [False, True])
def test_spec_augment_masks_training_features_only_when_on(spec_augment):
    """AN4's ``fea_augment`` (time and frequency masks) runs in training with ``spec_augment: True``."""
    with open(ROOT / "recipes" / "AN4" / "hparams" / "snn.yaml") as f:
        hparams = load_hyperpyyaml(f, {"data_folder": "unused", "spec_augment": spec_augment})
    seen = []
    encoder = lambda x, lengths: (seen.append(x) or x, None)  # noqa: E731  (records its input)
    brain = SimpleNamespace(
        hparams=SimpleNamespace(**hparams), modules=SimpleNamespace(normalize=lambda x, _: x, encoder=encoder)
    )
    brain.masking = lambda stage: ASRBrain.masking(brain, stage)
    brain.hparams.compute_features = lambda wavs: torch.randn(4, 200, 40).abs() + 1
    lens = torch.ones(4)
    for stage in (sb.Stage.VALID, sb.Stage.TEST, sb.Stage.TRAIN):
        ASRBrain.encode(brain, torch.zeros(4, 32000), lens, stage)
    masked = [(x == 0).any(-1).any(-1).all().item() for x in seen]
    assert masked == [False, False, spec_augment]


def test_unknown_characters_are_unk_not_the_ctc_blank(tmp_path):
    manifest(tmp_path / "train.csv", "wrd", ["ONE TWO", "TWO ONE ONE", "TWO"])
    units = subword_units(tokenizer_hparams(tmp_path))
    assert units.vocabulary()[:4] == ["<pad>", "<s>", "</s>", "<unk>"]
    ids = units.encode("ONE ZÉRO TWO")  # Z, É, R: not in the training transcripts
    assert IDS["unk_index"] in ids and IDS["blank_index"] not in ids, ids
    assert all(IDS["blank_index"] not in units.encode(t) for t in ["ONE TWO", "TWO ONE ONE", "TWO"])


def test_special_ids_must_differ(tmp_path):
    manifest(tmp_path / "train.csv", "wrd", ["ONE TWO"])
    with pytest.raises(
        ValueError, match=r"^the special token ids must differ \(blank_index: 0, .*unk_index: 0\)"
    ):
        subword_units({**tokenizer_hparams(tmp_path), "unk_index": 0})


def test_label_encoder_follows_its_special_labels_and_refuses_unknown_labels(tmp_path):
    manifest(tmp_path / "train.csv", "phn", ["sil a b sil"])
    ctc = label_units({"save_folder": tmp_path, "blank_index": 0, "output_neurons": 4}, "phn")
    assert len(ctc.vocabulary()) == 4
    hparams = {"save_folder": tmp_path, "blank_index": 0, "bos_index": 4, "eos_index": 5, "output_neurons": 6}
    attention = label_units(hparams, "phn")  # same folder, now with <bos>/<eos>: a new encoder
    assert attention.vocabulary()[4:] == ["▁<bos>", "▁<eos>"]
    dev = manifest(tmp_path / "dev.csv", "phn", ["sil a sil", "sil xx sil"])
    with pytest.raises(DataError) as err:
        attention.check([dev])
    assert str(err.value).startswith(f"{str(dev)!r}: utterance u1 has the label 'xx'"), err.value


@pytest.mark.parametrize(
    "sorting,order,shuffle",
    [("ascending", ["b", "a", "c"], False), ("descending", ["c", "a", "b"], False), ("random", None, True)],
)
def test_sorting_orders_or_shuffles_the_training_set(sorting, order, shuffle):
    data = DynamicItemDataset({"a": {"duration": 2.0}, "b": {"duration": 1.0}, "c": {"duration": 3.0}})
    hparams = {"sorting": sorting, "train_dataloader_opts": {"batch_size": 2}}
    ordered = order_training_set(data, hparams)
    assert hparams["train_dataloader_opts"]["shuffle"] is shuffle
    assert ordered.data_ids == (order or ["a", "b", "c"])


def test_unknown_sorting_is_one_line():
    data = DynamicItemDataset({"a": {"duration": 2.0}})
    with pytest.raises(
        ValueError, match="^sorting is 'shuffled'; pass --sorting ascending, descending or random$"
    ):
        order_training_set(data, {"sorting": "shuffled", "train_dataloader_opts": {}})


DDP_SCRIPT = """
import json, sys, torch, speechbrain as sb
from snn_asr import SpikingRNN
from snn_asr.recipes.brain import RecipeBrain

run_opts = {"distributed_backend": "gloo", "device": "cpu"}
sb.utils.distributed.ddp_init_group(run_opts)
torch.manual_seed(0)
encoder = SpikingRNN(input_size=3, hidden_size=4, num_layers=1)
brain = RecipeBrain(modules={"encoder": encoder}, run_opts=run_opts)
brain._wrap_distributed()
encoder, rank = brain.modules.encoder, torch.distributed.get_rank()
buffers = lambda: {n: b.tolist() for n, b in encoder.module.named_buffers() if b.is_floating_point()}
at_forward, after_update = [], []
encoder.module.register_forward_pre_hook(lambda module, args: at_forward.append(buffers()))
for step in range(2):
    encoder(torch.randn(2, 6, 3) * (1 + 3 * rank) + 5 * rank)[0].sum().backward()
    after_update.append(buffers())
gathered = [None, None]
torch.distributed.all_gather_object(gathered, {"at_forward": at_forward, "after_update": after_update})
if rank == 0:
    json.dump({"broadcast_buffers": encoder.broadcast_buffers, "ranks": gathered}, open(sys.argv[1], "w"))
torch.distributed.barrier()
torch.distributed.destroy_process_group()
"""


def test_ddp_starts_every_rank_from_rank_0s_buffers(tmp_path):
    """DDP's buffer broadcast, as the ``RecipeBrain._wrap_distributed`` docstring says: each rank updates
    batch norm's and the quantizer's statistics from its own batch, and the next forward starts from
    rank 0's again."""
    script, result = tmp_path / "ddp.py", tmp_path / "result.json"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", str(script), str(result)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(result.read_text())
    assert found["broadcast_buffers"] is True
    rank0, rank1 = found["ranks"]
    assert rank1["after_update"][0] != rank0["after_update"][0]  # step 1: each rank's batch moved its copy
    assert rank1["at_forward"][1] == rank0["after_update"][0]  # step 2 began from rank 0's statistics


def test_same_vocabulary_is_the_tokens_not_the_bytes(tmp_path):
    """Char tokenizers trained on one text in two folders differ in bytes (each records its input's
    path) but are the same tokens; another vocabulary is not."""
    import sentencepiece

    from snn_asr.recipes.checkpoints import same_vocabulary

    text = "".join(f"{w}\n" for w in ["A B C", "ENTER ONE TWO", "RUBOUT G M", "NO YES STOP"] * 20)
    models = {}
    for name, extra in (("one", ""), ("two", ""), ("other", "ZULU\n")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "text.txt").write_text(text + extra)
        sentencepiece.SentencePieceTrainer.train(
            input=str(folder / "text.txt"), model_prefix=str(folder / "m"), model_type="char",
            vocab_size=40, hard_vocab_limit=False, minloglevel=2,
        )  # fmt: skip
        models[name] = folder / "m.model"
    assert models["one"].read_bytes() != models["two"].read_bytes()
    assert same_vocabulary(models["one"], models["two"])
    assert not same_vocabulary(models["one"], models["other"])
