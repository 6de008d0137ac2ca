"""Training through the real `tts train` entry point, a few CPU steps on a synthetic corpus."""

import json

import pytest
import soundfile as sf
import torch

from tts.cli import main
from tts.train.run import AtomicCheckpointIO


def _train(run, corpus, *extra):
    return main(["train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run}", "trainer.accelerator=cpu", *extra])


def test_train_resume_and_speak(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=2") == 0
    card = json.loads((run / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 2 and card["vocoder"]["steps"] == 2
    assert card["acoustic"]["audio"] == card["vocoder"]["audio"]
    assert card["symbols"]["symbols"][card["symbols"]["pad_id"]] == "<pad>"
    for stage in ("acoustic", "vocoder"):
        assert (run / stage / "checkpoints" / "last.ckpt").is_file()
        assert list((run / stage / "logs").rglob("events.out.tfevents.*"))
    first = torch.load(run / "acoustic" / "checkpoints" / "last.ckpt", weights_only=False)
    capsys.readouterr()

    # The same command with more steps continues from the last checkpoint.
    assert _train(run, corpus, "trainer.max_steps=4", "stage=acoustic") == 0
    out = capsys.readouterr().out
    assert "acoustic: resuming from" in out and "at step 2" in out
    resumed = torch.load(run / "acoustic" / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == 4
    assert resumed["optimizer_states"][0]["state"], "optimizer state was not carried over"
    assert resumed["lr_schedulers"][0]["last_epoch"] == 4 == first["lr_schedulers"][0]["last_epoch"] + 2
    assert json.loads((run / "voice.json").read_text())["acoustic"]["steps"] == 4

    # The run directory is a voice.
    wav = tmp_path / "hello.wav"
    assert main(["synth", "Hello.", "--voice", str(run), "-o", str(wav), "--seed", "1", "-q"]) == 0
    data, rate = sf.read(wav)
    assert rate == 22050 and len(data) > 0


def test_resume_takes_the_commands_learning_rate(corpus, tmp_path, capsys):
    """A learning rate changed on the command line between two runs of the same command is the one
    the resumed run trains at (the checkpoint's schedule would otherwise keep the old one)."""
    run = tmp_path / "run"
    args = ("stage=acoustic", "acoustic_train.warmup_steps=1", "acoustic_train.min_lr=0")
    assert _train(run, corpus, "trainer.max_steps=2", "acoustic_train.lr=0.001", *args) == 0
    capsys.readouterr()
    assert _train(run, corpus, "trainer.max_steps=4", "acoustic_train.lr=0.0002", *args) == 0
    assert "learning rate 0.001 -> 0.0002 (the command's) from the resumed step on" in capsys.readouterr().out
    ckpt = torch.load(run / "acoustic" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4 and ckpt["lr_schedulers"][0]["base_lrs"] == [0.0002]
    lrs = {group["lr"] for group in ckpt["optimizer_states"][0]["param_groups"]}
    assert lrs and all(0.00019 < lr <= 0.0002 for lr in lrs), lrs  # decaying from 2e-4, not 1e-3
    assert _train(run, corpus, "trainer.max_steps=5", "acoustic_train.lr=0.0002", *args) == 0
    assert "learning rate" not in capsys.readouterr().out  # unchanged: nothing to say


def test_resume_refuses_changed_model(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=1", "stage=acoustic") == 0
    capsys.readouterr()
    assert _train(run, corpus, "trainer.max_steps=2", "stage=acoustic", "acoustic.decoder_dim=48") == 1
    err = capsys.readouterr().err
    assert "acoustic.decoder_dim: 64 -> 48" in err and len(err.strip().splitlines()) == 1


def test_a_model_section_may_change_until_its_stage_has_trained(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=1", "stage=acoustic") == 0
    # The vocoder has no weights here: the acoustic stage resumes under a redesigned vocoder section...
    assert _train(run, corpus, "trainer.max_steps=2", "stage=acoustic", "vocoder.residual_channels=12") == 0
    # ...which the vocoder then trains with; from then on it is held to it.
    assert _train(run, corpus, "trainer.max_steps=1", "stage=vocoder", "vocoder.residual_channels=12") == 0
    card = json.loads((run / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 2 and card["vocoder"]["config"]["residual_channels"] == 12
    capsys.readouterr()
    assert _train(run, corpus, "trainer.max_steps=2", "stage=acoustic") == 1
    err = capsys.readouterr().err
    assert "vocoder.residual_channels: 12 -> 8" in err and len(err.strip().splitlines()) == 1
    # the audio section is held once either stage has trained
    assert _train(run, corpus, "trainer.max_steps=2", "stage=vocoder", "vocoder.residual_channels=12",
                  "audio.f_max=3000") == 1
    assert "audio.f_max: " in capsys.readouterr().err


def test_gta_mels_belong_to_the_acoustic_weights(corpus, tmp_path):
    """vocoder_train.gta=true: the vocoder trains on the acoustic model's teacher-forced mels, one
    file per item, cached under a name of those weights: another acoustic model with the same step
    count, sharing the cache, gets mels of its own."""
    import numpy as np

    cache = tmp_path / "cache"
    dirs = []
    for name, seed in (("a", 1), ("b", 2)):
        run = tmp_path / name
        assert _train(run, corpus, "trainer.max_steps=1", "stage=acoustic", f"trainer.seed={seed}",
                      f"data.cache_dir={cache}") == 0
        assert _train(run, corpus, "trainer.max_steps=1", "stage=vocoder", "vocoder_train.gta=true",
                      f"vocoder_train.gta_share={0.5 if name == 'b' else 1.0}", f"data.cache_dir={cache}") == 0
        card = json.loads((run / "voice.json").read_text())
        assert card["vocoder"]["steps"] == 1
        dirs.append(cache / f"gta-step1-{card['acoustic']['sha256'][:12]}")
    assert dirs[0] != dirs[1] and sorted(p.name for p in cache.glob("gta-*")) == sorted(d.name for d in dirs)
    items = sorted(p.stem for p in dirs[0].glob("*.npy"))
    assert items and items == sorted(p.stem for p in dirs[1].glob("*.npy"))
    assert not list(dirs[0].glob(".*.tmp"))
    first, second = (np.load(d / f"{items[0]}.npy") for d in dirs)
    assert first.shape == second.shape and first.shape[0] == 80 and not np.allclose(first, second)


def test_vocoder_may_train_its_conditioning_alone(corpus, tmp_path, capsys):
    """vocoder_train.trainable=conditioning: a vocoder started from another run changes only its mel
    path (upsampler, each layer's conditioning projection); the rest stays as it was given."""
    from safetensors.torch import load_file

    base, tuned = tmp_path / "base", tmp_path / "tuned"
    assert _train(base, corpus, "trainer.max_steps=1", "stage=vocoder") == 0
    assert _train(tuned, corpus, "trainer.max_steps=3", "stage=vocoder", f"init_from={base}",
                  "vocoder_train.trainable=conditioning", "vocoder_train.ema_decay=null",
                  "vocoder_train.lr=0.01", "vocoder_train.warmup_steps=1",
                  "vocoder_train.mel_blur_frames=1.0", "vocoder_train.mel_blur_bands=0.5") == 0
    before, after = load_file(base / "vocoder.safetensors"), load_file(tuned / "vocoder.safetensors")
    assert before.keys() == after.keys()
    mel_path = {k for k in before if k.startswith("upsampler.") or ".cond." in k}
    assert mel_path and any(k.startswith("blocks.") for k in mel_path)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= mel_path, sorted(changed - mel_path)
    assert json.loads((tuned / "voice.json").read_text())["vocoder"]["steps"] == 4
    capsys.readouterr()
    assert _train(tuned, corpus, "stage=vocoder", "vocoder_train.trainable=body") == 1
    err = capsys.readouterr().err
    assert "vocoder_train.trainable must be one of all, conditioning" in err and len(err.strip().splitlines()) == 1
    assert _train(tuned, corpus, "stage=vocoder", "vocoder_train.mel_blur_frames=-1") == 1
    err = capsys.readouterr().err
    assert "vocoder_train.mel_blur_frames must be between 0 and 10, got -1" in err and len(err.strip().splitlines()) == 1
    for bad, message in (("vocoder_train.gta_share=0", "vocoder_train.gta_share must be in (0, 1], got 0"),
                         ("vocoder_train.gta_share=0.5", "it needs vocoder_train.gta=true")):
        assert _train(tuned, corpus, "stage=vocoder", bad) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_export_makes_a_voice_from_checkpoints(corpus, tmp_path, capsys):
    """`tts export RUN -o OUT`: the weights each stage would export, from its checkpoints, as a new
    voice; a stage without checkpoints comes from the run's export; OUT is never written into."""
    import shutil

    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=2") == 0
    theirs = json.loads((run / "voice.json").read_text())
    capsys.readouterr()

    out = tmp_path / "voice"
    assert main(["export", str(run), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "acoustic: step 2 from last.ckpt" in printed and "vocoder: step 2 from last.ckpt" in printed
    ours = json.loads((out / "voice.json").read_text())
    for part in ("acoustic", "vocoder"):  # the final checkpoint is what the stage exported: the same bytes
        assert ours[part]["steps"] == 2 and ours[part]["sha256"] == theirs[part]["sha256"]
    assert ours["symbols"] == theirs["symbols"]
    wav = tmp_path / "hello.wav"
    assert main(["synth", "Hello.", "--voice", str(out), "-o", str(wav), "--seed", "1", "-q"]) == 0
    assert sf.info(str(wav)).frames > 0

    # an existing directory is refused and left as it was
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    assert main(["export", str(run), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before

    # the best checkpoint; and a stage with none left is copied from the run's export
    assert main(["export", str(run), "-o", str(tmp_path / "best"), "--checkpoint", "best"]) == 0
    assert "from best.ckpt" in capsys.readouterr().out
    shutil.rmtree(run / "vocoder" / "checkpoints")
    assert main(["export", str(run), "-o", str(tmp_path / "copied")]) == 0
    assert "vocoder: step 2 from the run's export" in capsys.readouterr().out
    copied = json.loads((tmp_path / "copied" / "voice.json").read_text())
    assert copied["vocoder"]["sha256"] == theirs["vocoder"]["sha256"]

    # not a run directory: one line, nothing made
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "-o", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "has no checkpoints" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "nothing").exists() and not list(tmp_path.glob(".nothing.*"))


def test_bad_corpus_row_stops_before_training(corpus, tmp_path, capsys):
    (corpus / "wavs" / "LJ002.wav").unlink()
    assert _train(tmp_path / "run", corpus, "trainer.max_steps=1") == 1
    err = capsys.readouterr().err
    assert "metadata.csv:3: LJ002" in err and "no such file" in err
    assert _train(tmp_path / "run", corpus, "trainer.max_steps=1", "stage=acoustic", "data.skip_bad=true") == 0


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1}, path)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_concurrent_card_updates_keep_every_part(tmp_path):
    # The acoustic and vocoder stages of one run may be trained side by side and export into the
    # same voice.json: each read-modify-write holds the card's lock, so no update is lost.
    import threading

    from tts.voice import update_card

    start = threading.Barrier(2)

    def bump(part):
        start.wait()
        for _ in range(100):
            update_card(tmp_path, lambda card: card.update({part: card.get(part, 0) + 1}))

    threads = [threading.Thread(target=bump, args=(part,)) for part in ("acoustic", "vocoder")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    card = json.loads((tmp_path / "voice.json").read_text())
    assert card["acoustic"] == 100 and card["vocoder"] == 100


@pytest.mark.parametrize("raised", ["sigterm", "worker_killed"])
def test_terminated_training_exits_143(tmp_path, raised):
    # SIGTERM (a scheduler, `kill`, `timeout`) saves last.ckpt through SaveOnInterrupt; the process
    # must then exit 128 + SIGTERM, not 0 as Lightning's SystemExit would.
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from tts.train.run import _fit

    class Terminated:
        received_sigterm, is_global_zero = True, True

        def fit(self, *args, **kwargs):
            raise SIGTERMException() if raised == "sigterm" else RuntimeError("DataLoader worker is killed")

    with pytest.raises(SystemExit) as exit_info:
        _fit(Terminated(), None, None, tmp_path, "acoustic")
    assert exit_info.value.code == 143

    Terminated.received_sigterm = False  # any other failure is left as it is
    with pytest.raises(SIGTERMException if raised == "sigterm" else RuntimeError):
        _fit(Terminated(), None, None, tmp_path, "acoustic")
