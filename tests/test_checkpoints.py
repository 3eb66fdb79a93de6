"""Broken checkpoints (a kill during a save, a truncated or garbage file) are set aside, never loaded."""

from __future__ import annotations

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from snn_asr.recipes.checkpoints import BROKEN_PREFIX, set_aside_broken_checkpoints, sound_checkpoint


def saved_run(folder, epochs: int = 3) -> tuple[Checkpointer, torch.nn.Linear, EpochCounter]:
    """A checkpointer holding one checkpoint per epoch, as a recipe's does (a model, the epoch)."""
    model, counter = torch.nn.Linear(4, 3), EpochCounter(10)
    checkpointer = Checkpointer(folder, recoverables={"model": model, "counter": counter})
    for epoch in range(1, epochs + 1):
        counter.current = epoch
        with torch.no_grad():
            model.weight.fill_(epoch)
        checkpointer.save_checkpoint(meta={"epoch": epoch})
    return checkpointer, model, counter


def newest(checkpointer: Checkpointer):
    return max(checkpointer.list_checkpoints(), key=lambda c: c.meta["unixtime"])


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "model.ckpt is truncated"),
        (lambda p: p.unlink(), "model.ckpt is missing"),  # killed after CKPT.yaml, before the file
        (lambda p: p.write_bytes(b"\x00garbage" * 100), "model.ckpt is truncated or not a torch file"),
    ],
)
def test_a_broken_newest_checkpoint_is_set_aside_and_the_one_before_resumes(tmp_path, damage, problem):
    checkpointer, model, counter = saved_run(tmp_path / "save")
    broken = newest(checkpointer).path
    damage(broken / "model.ckpt")
    warnings = set_aside_broken_checkpoints(checkpointer)
    assert len(warnings) == 1 and str(broken) in warnings[0] and problem in warnings[0], warnings
    assert (broken.parent / (BROKEN_PREFIX + broken.name)).is_dir() and not broken.exists()
    checkpointer.recover_if_possible()
    assert counter.current == 2 and float(model.weight[0, 0]) == 2.0  # epoch 2's, whole


def test_a_corrupt_byte_inside_a_torch_file_is_caught_by_its_crc(tmp_path):
    checkpointer, _, _ = saved_run(tmp_path / "save", epochs=2)
    path = newest(checkpointer).path / "model.ckpt"
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    warnings = set_aside_broken_checkpoints(checkpointer)
    assert len(warnings) == 1 and "model.ckpt is corrupt" in warnings[0]


def test_no_sound_checkpoint_refuses_and_leaves_them_in_place(tmp_path):
    checkpointer, _, _ = saved_run(tmp_path / "save", epochs=2)
    for ckpt in checkpointer.list_checkpoints():
        (ckpt.path / "counter.ckpt").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"every checkpoint in .* is incomplete or corrupt .*counter.ckpt is empty"
    ):
        set_aside_broken_checkpoints(checkpointer)
    assert len(checkpointer.list_checkpoints()) == 2  # a rerun must not start from scratch
    assert set_aside_broken_checkpoints(Checkpointer(tmp_path / "fresh", recoverables={})) == []


class _Planted:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_checkpoint_holding_pickled_code_is_set_aside_unrun(tmp_path):
    checkpointer, model, counter = saved_run(tmp_path / "save")
    planted = tmp_path / "planted"
    torch.save({"weight": _Planted(planted)}, newest(checkpointer).path / "model.ckpt")
    warnings = set_aside_broken_checkpoints(checkpointer)
    assert len(warnings) == 1 and "model.ckpt holds pickled code" in warnings[0] and not planted.exists()
    checkpointer.recover_if_possible()
    assert counter.current == 2 and not planted.exists()


def test_a_lone_checkpoint_cut_by_a_kill_during_the_first_save_is_set_aside(tmp_path):
    checkpointer, _, _ = saved_run(tmp_path / "save", epochs=1)
    (newest(checkpointer).path / "counter.ckpt").unlink()  # killed after CKPT.yaml, before the counter
    warnings = set_aside_broken_checkpoints(checkpointer)
    assert len(warnings) == 1 and "training starts from epoch 1" in warnings[0]
    assert checkpointer.list_checkpoints() == []


def test_an_lms_best_checkpoint_when_corrupt_is_skipped_for_the_next_best_and_none_sound_refuses(tmp_path):
    checkpointer, _, _ = saved_run(tmp_path / "save")  # meta "epoch": the lowest is the "best" here
    assert sound_checkpoint(checkpointer, min_key="epoch").meta["epoch"] == 1
    best = min(checkpointer.list_checkpoints(), key=lambda c: c.meta["epoch"]).path
    (best / "model.ckpt").write_bytes(b"garbage")
    assert sound_checkpoint(checkpointer, min_key="epoch").meta["epoch"] == 2
    assert best.is_dir()  # another run's folder: nothing renamed
    for ckpt in checkpointer.list_checkpoints():
        (ckpt.path / "model.ckpt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"^every checkpoint in .* is incomplete or corrupt .*new output"):
        sound_checkpoint(checkpointer, min_key="epoch")
