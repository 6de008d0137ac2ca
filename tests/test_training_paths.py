"""The paths GPU users take first, exercised on the CPU: mixed precision, DDP (gloo), step budgets
that follow the command line, recipes validated before anything trains, weight averages, init_from."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tts.cli import main
from tts.config import load_recipe


def _train(run, corpus, *extra, recipe="tiny"):
    return main(["train", f"recipe={recipe}", f"data.root={corpus}", f"run_dir={run}", "trainer.accelerator=cpu", *extra])


def _ckpt(run, stage):
    return torch.load(run / stage / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_bf16_mixed_trains_both_stages(corpus, tmp_path, monkeypatch):
    from tts.train import run as run_module

    monkeypatch.setattr(run_module, "cpu_has_bf16", lambda: True)
    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=2", "trainer.precision=bf16-mixed") == 0
    card = json.loads((run / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 2 and card["vocoder"]["steps"] == 2
    for stage in ("acoustic", "vocoder"):
        ckpt = _ckpt(run, stage)
        assert ckpt["global_step"] == 2
        weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
        assert weights and all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights)
    assert run_module.resolve_precision(load_recipe("tiny", ["data.root=x", "trainer.precision=bf16-mixed"])) == "bf16-mixed"


def test_bf16_falls_back_to_fp32_without_native_support(monkeypatch, caplog):
    from tts.train import run as run_module

    monkeypatch.setattr(run_module, "cpu_has_bf16", lambda: False)
    recipe = load_recipe("tiny", ["data.root=x", "trainer.precision=bf16-mixed"])
    with caplog.at_level("INFO"):
        assert run_module.resolve_precision(recipe) == "32-true"
    assert "no native bf16" in caplog.text


def test_global_overrides_reach_every_stage():
    recipe = load_recipe("ljspeech", ["data.root=x", "trainer.max_steps=4", "data.batch_size=3"])
    assert recipe.acoustic_train.max_steps == recipe.vocoder_train.max_steps == 4
    assert recipe.acoustic_train.batch_size == recipe.vocoder_train.batch_size == 3
    # A stage's own key on the command line still wins over the global one.
    recipe = load_recipe("ljspeech", ["data.root=x", "trainer.max_steps=4", "vocoder_train.max_steps=7"])
    assert (recipe.acoustic_train.max_steps, recipe.vocoder_train.max_steps) == (4, 7)


def test_max_steps_on_the_command_line_beats_the_recipe(corpus, tmp_path):
    recipe = tmp_path / "mine.yaml"
    tiny = (load_recipe.__globals__["RECIPES_DIR"] / "tiny.yaml").read_text()
    recipe.write_text(tiny.replace("acoustic_train:\n", "acoustic_train:\n  max_steps: 75\n"))
    run = tmp_path / "run"
    assert _train(run, corpus, "stage=acoustic", "trainer.max_steps=3", recipe=str(recipe)) == 0
    assert _ckpt(run, "acoustic")["global_step"] == 3


def test_max_minutes_ends_each_stage_with_a_checkpoint_and_an_export(corpus, tmp_path):
    """A time budget stops every stage where it is (here after its first step), saves last.ckpt and
    exports, as max_steps would; running the command again trains that long again."""
    run = tmp_path / "run"
    budget = ("trainer.max_steps=500", "trainer.max_minutes=0.0001")
    assert _train(run, corpus, *budget) == 0
    card = json.loads((run / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 1 and card["vocoder"]["steps"] == 1
    assert _ckpt(run, "acoustic")["global_step"] == 1 and _ckpt(run, "vocoder")["global_step"] == 1
    assert _train(run, corpus, *budget) == 0
    assert _ckpt(run, "acoustic")["global_step"] == 2 and _ckpt(run, "vocoder")["global_step"] == 2
    assert json.loads((run / "voice.json").read_text())["vocoder"]["steps"] == 2


def test_a_run_killed_without_warning_resumes_from_its_timed_checkpoint(corpus, tmp_path):
    """trainer.checkpoint_every_minutes: with step checkpoints far apart, a run SIGKILLed mid-way
    (no handler can save then) still left last.ckpt at a recent step, and resumes from it."""
    import signal
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "tts.cli", "train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run}",
               "trainer.accelerator=cpu", "stage=acoustic", "trainer.max_steps=100000",
               "trainer.checkpoint_every_steps=100000", "trainer.checkpoint_every_minutes=0.001"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline, step = time.monotonic() + 240, 0
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            try:
                step = _ckpt(run, "acoustic")["global_step"]
            except Exception:  # not written yet, or being replaced as it is read
                continue
            if step >= 3:
                break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert step >= 3, f"no timed checkpoint past step 2 (last read: step {step})"
    saved = _ckpt(run, "acoustic")["global_step"]
    assert saved >= step
    assert _train(run, corpus, "stage=acoustic", f"trainer.max_steps={saved + 1}") == 0
    assert _ckpt(run, "acoustic")["global_step"] == saved + 1


@pytest.mark.parametrize("setting, message", [
    ("vocoder.upsample_scales=[4,4]", "multiply to 16, but audio.hop_length is 256"),
    ("acoustic.encoder_kernel_size=4", "acoustic.encoder_kernel_size must be a positive odd number"),
    ("acoustic.dropout=1.5", "acoustic.dropout must be in [0, 1)"),
    ("trainer.compile=sometimes", "trainer.compile must be auto, true or false"),
    ("trainer.max_minutes=0", "trainer.max_minutes must be a positive number of minutes or null"),
    ("trainer.checkpoint_every_minutes=-5", "trainer.checkpoint_every_minutes must be a positive number of minutes or null"),
])
def test_bad_recipe_fails_before_anything_is_trained_or_written(corpus, tmp_path, capsys, setting, message):
    run = tmp_path / "run"
    assert _train(run, corpus, "trainer.max_steps=1", setting) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (run / "recipe.yaml").exists() and not list(run.rglob("*.ckpt"))
    # The corrected command is not refused as "trained with other settings".
    assert _train(run, corpus, "trainer.max_steps=1", "stage=acoustic") == 0


def test_weight_average_is_bias_corrected():
    from tts.train.ema import WeightAverage

    model = torch.nn.Linear(2, 1)
    average = WeightAverage(model, decay=0.9999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update()
    # One update: the average is the weights themselves, not 0.0001 of them.
    torch.testing.assert_close(average.averaged()["weight"], torch.ones(1, 2))
    with torch.no_grad():
        model.weight.fill_(3.0)
    average.update()
    # Two updates: (0.9999 * 1 + 3) / (1 + 0.9999), the bias-corrected weighted mean.
    expected = (0.9999 * 1.0 + 3.0) / 1.9999
    torch.testing.assert_close(average.averaged()["weight"], torch.full((1, 2), expected))
    with average.swapped_in():
        torch.testing.assert_close(model.weight.detach(), torch.full((1, 2), expected))
    torch.testing.assert_close(model.weight.detach(), torch.full((1, 2), 3.0))


@pytest.mark.parametrize("stage, section", [("vocoder", "vocoder_train"), ("acoustic", "acoustic_train")])
def test_a_stage_exports_and_resumes_its_weight_average(corpus, tmp_path, stage, section):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    assert _train(run, corpus, f"stage={stage}", "trainer.max_steps=2", f"{section}.ema_decay=0.9") == 0
    ckpt = _ckpt(run, stage)
    assert ckpt["weight_average"]["updates"] == 2
    exported = load_file(str(run / f"{stage}.safetensors"))
    correction = 1 - 0.9 ** 2
    for name, shadow in ckpt["weight_average"]["shadow"].items():
        torch.testing.assert_close(exported[name], shadow / correction)
    moved = [name for name in ckpt["weight_average"]["shadow"]
             if not torch.equal(ckpt["state_dict"][f"model.{name}"], exported[name])]
    assert moved, "the export should be the average, not the last weights"
    assert _train(run, corpus, f"stage={stage}", "trainer.max_steps=3", f"{section}.ema_decay=0.9") == 0
    assert _ckpt(run, stage)["weight_average"]["updates"] == 3  # restored, then updated once more


def test_the_acoustic_stage_has_no_weight_average_unless_asked(corpus, tmp_path):
    run = tmp_path / "run"
    assert _train(run, corpus, "stage=acoustic", "trainer.max_steps=1") == 0
    assert "weight_average" not in _ckpt(run, "acoustic")


def test_init_from_a_voice_carries_weights_and_steps_on(corpus, tmp_path, capsys):
    from safetensors.torch import load_file

    first = tmp_path / "first"
    assert _train(first, corpus, "trainer.max_steps=2") == 0
    second = tmp_path / "second"
    assert _train(second, corpus, "trainer.max_steps=1", f"init_from={first}", "acoustic_train.lr=1e-12", "acoustic_train.min_lr=0", "vocoder_train.min_lr=0",
                  "vocoder_train.lr=1e-12", "acoustic_train.warmup_steps=1", "vocoder_train.warmup_steps=1") == 0
    card = json.loads((second / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 3 and card["vocoder"]["steps"] == 3
    before, after = load_file(str(first / "acoustic.safetensors")), load_file(str(second / "acoustic.safetensors"))
    for name in before:  # a learning rate of 1e-12 leaves the starting weights as they were
        if before[name].is_floating_point() and "running_" not in name:  # batch-norm statistics move
            torch.testing.assert_close(after[name], before[name], atol=1e-6, rtol=0)
    capsys.readouterr()
    assert _train(tmp_path / "third", corpus, "trainer.max_steps=1", f"init_from={first}", "acoustic.decoder_dim=48") == 1
    assert "acoustic.decoder_dim: 64 in the voice, 48 in the recipe" in capsys.readouterr().err
    # Fields that act only in training may differ from the voice's (here, then on resume); the card
    # records what the run trained with.
    noisy = tmp_path / "noisy"
    assert _train(noisy, corpus, "trainer.max_steps=3", "stage=vocoder", f"init_from={first}",
                  "vocoder.noise_injection=2.0", "vocoder.dropout=0.1") == 0
    assert json.loads((noisy / "voice.json").read_text())["vocoder"]["config"]["noise_injection"] == 2.0
    assert _train(noisy, corpus, "trainer.max_steps=4", "stage=vocoder", "vocoder.noise_injection=1.0") == 0
    assert _train(noisy, corpus, "trainer.max_steps=5", "stage=vocoder", "vocoder.residual_channels=4") == 1
    assert "vocoder.residual_channels" in capsys.readouterr().err


def _cli(*args, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "tts.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_ddp_on_the_cpu_trains_resumes_and_writes_once(corpus, tmp_path):
    # trainer.devices=2 on the CPU: two processes (gloo), what trainer.devices=N does on N GPUs.
    run = tmp_path / "run"
    common = ["train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run}", "trainer.accelerator=cpu",
              "trainer.devices=2"]
    done = _cli(*common, "trainer.max_steps=2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("; synthesize with: tts synth") == 1, done.stdout  # the summary, from rank 0 only
    card = json.loads((run / "voice.json").read_text())
    assert card["acoustic"]["steps"] == 2 and card["vocoder"]["steps"] == 2
    for stage in ("acoustic", "vocoder"):
        assert _ckpt(run, stage)["global_step"] == 2
        # Rank 0 alone logs: one event file per stage, and the media are in it.
        events = list((run / stage / "logs").rglob("events.out.tfevents.*"))
        assert len(events) == 1, events
    assert not list(run.rglob("*.tmp")), "a checkpoint write was left half-done"
    done = _cli(*common, "trainer.max_steps=4", "stage=acoustic")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("acoustic: resuming from") == 1  # printed by rank 0 only
    assert _ckpt(run, "acoustic")["global_step"] == 4
    assert json.loads((run / "voice.json").read_text())["acoustic"]["steps"] == 4


def test_a_run_from_a_voice_carries_the_learning_rate_decay_on():
    """init_from: the learning-rate decay (and the guided-attention weight) continue from the voice's steps (the
    warm-up is the run's own: its Adam moments start afresh); a run from scratch is unchanged."""
    from tts.text import SymbolTable
    from tts.train.acoustic import TacotronSystem
    from tts.train.schedule import warmup_exp_decay

    def lrs(start_step, steps=4):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        schedule = warmup_exp_decay(optimizer, lr=1.0, min_lr=0.0, warmup_steps=2, decay_steps=10, start_step=start_step)
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return values

    assert lrs(0) == pytest.approx([0.5, 1.0, 1.0, 0.5 ** 0.1])
    assert lrs(100) == pytest.approx([0.5 * 0.5 ** 9.8, 0.5 ** 9.9, 0.5 ** 10.0, 0.5 ** 10.1])

    recipe = load_recipe("tiny", ["data.root=unused"])
    system = TacotronSystem(audio=recipe.audio, model=recipe.acoustic, train=recipe.acoustic_train,
                            symbols=SymbolTable.default().to_dict())
    fresh = system.configure_optimizers()["lr_scheduler"]["scheduler"].lr_lambdas[0](10 ** 6)
    system.init_steps = 10 ** 6
    carried = system.configure_optimizers()["lr_scheduler"]["scheduler"].lr_lambdas[0](0)
    assert carried < 1.0 and fresh == pytest.approx(carried * recipe.acoustic_train.warmup_steps, rel=1e-6)
