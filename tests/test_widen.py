"""Widening a trained WaveNet (tts.models.widen) keeps what it computes and lets the new units learn."""

import dataclasses

import pytest
import torch
from torch.testing import assert_close

from tests.conftest import random_wavenet
from tts.config import AudioConfig, WaveNetConfig
from tts.models.wavenet import WaveNet
from tts.models.widen import widen

AUDIO = AudioConfig(sample_rate=8000, n_fft=64, win_length=64, hop_length=8, n_mels=6, f_max=4000.0)


def model(output="mulaw", excitation="lpc", seed=0, **widths) -> WaveNet:
    sizes = {"residual_channels": 8, "gate_channels": 16, "skip_channels": 8, **widths}
    config = WaveNetConfig(layers=6, stacks=2, kernel_size=2, upsample_scales=(2, 4), output=output, mixtures=3,
                           excitation=excitation, lpc_order=4, **sizes)
    return random_wavenet(config, n_mels=6, hop_length=8, audio=AUDIO, seed=seed)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 80, generator=g) - 0.5, torch.randn(2, 6, 10, generator=g) - 3.0


@pytest.mark.parametrize("output,excitation", [("mulaw", "lpc"), ("mol", "lpc"), ("mulaw", "none"), ("mol", "none")])
def test_the_wide_model_computes_what_the_narrow_one_did(batch, output, excitation):
    audio, mel = batch
    narrow = model(output, excitation)
    wide = widen(narrow, model(output, excitation, seed=1, residual_channels=16, gate_channels=40, skip_channels=12))
    with torch.no_grad():
        expected = narrow(audio, mel)
        assert expected.std() > 0.1
        assert_close(wide(audio, mel), expected, atol=1e-5, rtol=1e-5)
    # the new units are alive: their activations differ from zero, so the zeroed weights out of them learn
    wide.train()
    wide(audio, mel)[:, :-1].square().mean().backward()  # (an LPC model's last channel is its target)
    gate_out = wide.blocks[0].out.weight.grad[:, 8:20, 0]  # from the gated units the narrow model lacked
    assert gate_out.abs().max() > 1e-4
    assert wide.blocks[1].conv.weight.grad[:, 8:, :].abs().max() > 1e-4  # from the new residual channels


def test_equal_widths_copy_the_model(batch):
    audio, mel = batch
    narrow = model()
    same = widen(narrow, model(seed=3))
    for (name, a), b in zip(narrow.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("change,message", [
    ({"residual_channels": 4}, "cannot shrink: res 8 -> 4"),
    ({"layers": 8}, "layers (6 -> 8)"),
])
def test_only_the_widths_can_grow(change, message):
    narrow = model()
    config = dataclasses.replace(narrow.config, **change)
    other = WaveNet(config, n_mels=6, hop_length=8, audio=AUDIO)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        widen(narrow, other)


def test_the_script_writes_a_wider_voice_and_refuses_bad_widths(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tts.card import load_card
    from tts.config import load_recipe
    from tts.voice import write_untrained_voice

    script = Path(__file__).resolve().parents[1] / "scripts" / "widen_vocoder.py"
    voice = write_untrained_voice(tmp_path / "narrow", load_recipe("tiny", [f"data.root={tmp_path}"]))
    run = lambda *args: subprocess.run([sys.executable, str(script), str(voice), *args],  # noqa: E731
                                       capture_output=True, text=True)
    done = run("--out", str(tmp_path / "wide"), "residual_channels=12", "skip_channels=10")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["widths"] == {"residual_channels": 12, "gate_channels": 16,
                                                                   "skip_channels": 10}
    card = load_card(tmp_path / "wide")
    assert (card.vocoder.config.residual_channels, card.vocoder.config.skip_channels) == (12, 10)
    assert card.acoustic is not None and card.vocoder.steps == 0
    for args, message in [(("--out", str(tmp_path / "x"), "residual_channels=4"), "cannot shrink: res 8 -> 4"),
                          (("--out", str(tmp_path / "x"), "layers=30"), "expected NAME=CHANNELS"),
                          (("--out", str(tmp_path / "wide"), "residual_channels=16"), "exists; name a new directory")]:
        failed = run(*args)
        assert failed.returncode == 2 and failed.stderr.strip().startswith("error: ") and message in failed.stderr
        assert "Traceback" not in failed.stderr
    assert not (tmp_path / "x").exists()
