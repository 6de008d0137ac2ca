"""Checkpoints: whole files only, the previous one kept, damaged ones set aside, stale temp files removed."""

import os
import stat

import pytest
import torch

from tts.train.checkpoints import (AtomicCheckpointIO, CheckpointError, remove_stale_files, resume_point)


def _save(io, path, step):
    io.save_checkpoint({"global_step": step, "state_dict": {"w": torch.full((4,), float(step))}}, path)


def test_a_new_last_checkpoint_keeps_the_previous_one(tmp_path):
    io = AtomicCheckpointIO()
    last = tmp_path / "last.ckpt"
    _save(io, last, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    _save(io, last, 2)
    _save(io, last, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt", "last.prev.ckpt"]
    assert torch.load(last, weights_only=False)["global_step"] == 3
    assert torch.load(tmp_path / "last.prev.ckpt", weights_only=False)["global_step"] == 2
    _save(io, tmp_path / "best.ckpt", 2)  # only last.ckpt keeps a previous copy
    assert not (tmp_path / "best.prev.ckpt").exists()


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        _save(AtomicCheckpointIO(), tmp_path / "last.ckpt", 1)
        _save(AtomicCheckpointIO(), tmp_path / "last.ckpt", 2)
    finally:
        os.umask(old)
    for name in ("last.ckpt", "last.prev.ckpt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


@pytest.mark.parametrize("damage", ["truncated", "empty", "junk", "not_a_checkpoint"])
def test_a_damaged_last_checkpoint_falls_back_to_the_newest_intact(tmp_path, caplog, damage):
    io = AtomicCheckpointIO()
    for step in (4, 6):
        _save(io, tmp_path / "last.ckpt", step)
    _save(io, tmp_path / "best.ckpt", 2)
    last = tmp_path / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes({"truncated": data[: len(data) // 2], "empty": b"", "junk": b"\x00junk" * 50,
                      "not_a_checkpoint": b""}[damage])
    if damage == "not_a_checkpoint":
        torch.save({"hello": 1}, last)
    with caplog.at_level("WARNING", logger="tts.train.checkpoints"):
        path, step = resume_point(tmp_path, stage="acoustic")
    assert (path.name, step) == ("last.prev.ckpt", 4)
    assert "last.ckpt is damaged" in caplog.text and "newest intact checkpoint" in caplog.text
    # Set aside, so the next save cannot keep it as last.prev.ckpt.
    assert not last.exists() and (tmp_path / "last.ckpt.damaged").is_file()
    _save(io, last, 5)
    assert torch.load(tmp_path / "last.prev.ckpt", weights_only=False)["global_step"] == 4


def test_best_is_the_last_resort_and_none_intact_is_one_line(tmp_path):
    io = AtomicCheckpointIO()
    _save(io, tmp_path / "best.ckpt", 3)
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert resume_point(tmp_path, stage="vocoder")[1] == 3
    (tmp_path / "last.ckpt").write_bytes(b"")
    (tmp_path / "best.ckpt").write_bytes(b"\x80\x02broken")
    with pytest.raises(CheckpointError) as err:
        resume_point(tmp_path, stage="vocoder")
    text = str(err.value)
    assert len(text.splitlines()) == 1 and text.startswith(f"vocoder: no intact checkpoint in {tmp_path}")
    assert "last.ckpt: 0 bytes" in text and "best.ckpt: " in text and "to train the stage from the start" in text


def test_a_new_stage_has_no_resume_point(tmp_path):
    assert resume_point(tmp_path / "nothing", stage="acoustic") is None
    assert resume_point(tmp_path, stage="acoustic") is None


def test_stale_temporary_files_are_removed_at_the_next_start(tmp_path):
    _save(AtomicCheckpointIO(), tmp_path / "last.ckpt", 7)
    stale = [tmp_path / ".last.ckpt.abc123.tmp", tmp_path / ".best.ckpt.x.tmp", tmp_path / ".last.ckpt.new"]
    for path in stale:
        path.write_bytes(b"x" * 100)
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert resume_point(tmp_path, stage="acoustic")[1] == 7
    assert not any(p.exists() for p in stale) and keep.exists()
    assert remove_stale_files(tmp_path) == []


def test_killed_between_the_renames_resumes_from_the_previous(tmp_path):
    # The new file is complete, the old last.ckpt already moved to last.prev.ckpt, then the kill.
    io = AtomicCheckpointIO()
    _save(io, tmp_path / "last.ckpt", 2)
    _save(io, tmp_path / ".last.ckpt.new", 3)
    (tmp_path / "last.ckpt").replace(tmp_path / "last.prev.ckpt")
    path, step = resume_point(tmp_path, stage="acoustic")
    assert (path.name, step) == ("last.prev.ckpt", 2) and not (tmp_path / ".last.ckpt.new").exists()


def test_tts_train_resumes_past_a_truncated_last_checkpoint(corpus, tmp_path, capsys):
    from tts.cli import main

    run = tmp_path / "run"
    args = ["train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run}", "trainer.accelerator=cpu", "stage=acoustic"]
    assert main([*args, "trainer.max_steps=2"]) == 0
    checkpoints = run / "acoustic" / "checkpoints"
    last = checkpoints / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    capsys.readouterr()
    assert main([*args, "trainer.max_steps=3"]) == 0
    out = capsys.readouterr().out
    assert f"acoustic: resuming from {checkpoints / 'last.prev.ckpt'} at step 2" in out
    assert torch.load(last, weights_only=False)["global_step"] == 3
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]
    # With nothing intact the run stops with one line.
    for path in checkpoints.glob("*.ckpt"):
        path.write_bytes(b"")
    capsys.readouterr()
    assert main([*args, "trainer.max_steps=4"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "acoustic: no intact checkpoint in" in err
