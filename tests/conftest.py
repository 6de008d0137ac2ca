"""Shared fixtures: tiny synthetic corpora in the LJSpeech layout, made in tmp_path."""

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# Set before any test module imports torch: idle OpenMP threads then sleep instead of spinning, so
# torch and the Numba WaveNet kernel do not starve each other on a busy CPU (docs/synthesis.md,
# "OMP_WAIT_POLICY": the synthesis tests ran 3.5x faster with it on two shared cores). A value
# already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SENTENCES = [
    "Hello world.",
    "The cat sat on the mat.",
    "A quick test of the system.",
    "We read a book today.",
    "Speech is fun to make.",
    "Numbers like 42 are spoken.",
    "Good morning to you all.",
    "This is the last one.",
]


def make_corpus(root: Path, n: int = 8, sample_rate: int = 22050, seconds: float = 0.4) -> Path:
    """n utterances of harmonic tones whose pitch follows the text, metadata.csv rows id|text|text."""
    wavs = root / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        length = int(sample_rate * seconds * (0.75 + 0.5 * (i % 3) / 2))
        t = np.arange(length) / sample_rate
        f0 = 120 + 15 * (i % 5)
        wav = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)) + 0.01 * rng.standard_normal(length)
        uid = f"LJ{i:03d}"
        sf.write(wavs / f"{uid}.wav", wav.astype(np.float32), sample_rate, subtype="PCM_16")
        rows.append(f"{uid}|{text}|{text}")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_corpus(tmp_path / "corpus")


# A small, fast voice for synthesis tests: the tiny recipe at 8 kHz with 20 mels and a 64-sample hop.
# Its weights are random and its stop threshold unreachable, so every sentence runs to its length
# bound: 1 frame per symbol plus 4, i.e. about 8 ms of audio per symbol; 4 frames per decoder step.
TINY_VOICE_SETTINGS = [
    "data.root=unused", "audio.sample_rate=8000", "audio.n_fft=256", "audio.win_length=256", "audio.hop_length=64",
    "audio.n_mels=20", "audio.f_max=4000", "vocoder.upsample_scales=[4,4,4]", "acoustic.max_frames_per_symbol=1.0",
    "acoustic.max_frames_margin=4", "acoustic.stop_threshold=1.0", "acoustic.reduction=4",
]


@pytest.fixture(scope="session")
def tiny_voice(tmp_path_factory) -> Path:
    """A voice directory (voice.json, acoustic and vocoder safetensors) with random weights."""
    from tts.config import load_recipe
    from tts.voice import write_untrained_voice

    return write_untrained_voice(tmp_path_factory.mktemp("voice") / "tiny", load_recipe("tiny", TINY_VOICE_SETTINGS))


def random_wavenet(config, *, n_mels: int, hop_length: int, audio=None, seed: int = 0):
    """A WaveNet in eval mode whose random weights are jostled (+0.2 sd) so that every path reaches
    the output: for tests that compare two ways of computing the same thing."""
    import torch

    from tts.models.wavenet import WaveNet

    torch.manual_seed(seed)
    model = WaveNet(config, n_mels=n_mels, hop_length=hop_length, audio=audio).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model
