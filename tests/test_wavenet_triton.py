"""The persistent Triton sampler (tts.models.wavenet_triton) against the teacher-forced forward pass
and the torch sampler: on the CPU through Triton's interpreter (a subprocess, since the interpreter
must be chosen before Triton is imported), and on a GPU when there is one."""

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

pytest.importorskip("triton")

from tts.config import WaveNetConfig  # noqa: E402
from tts.models.wavenet import WaveNet, mulaw_encode  # noqa: E402

# Small enough for the interpreter, large enough for its dots (every size a power of two >= 16).
SMALL = dict(layers=4, stacks=2, kernel_size=2, residual_channels=16, gate_channels=32, skip_channels=16,
             upsample_scales=(2, 4), output="mulaw")
BENCH = dict(layers=20, stacks=2, kernel_size=2, residual_channels=64, gate_channels=128, skip_channels=64,
             upsample_scales=(4, 4, 4, 4), output="mulaw")

INTERPRETED = """
import json, sys, torch
from tts.config import AudioConfig, WaveNetConfig
from tts.models.wavenet import WaveNet
from tts.models.wavenet_triton import TritonSampler

config = WaveNetConfig(**json.loads(sys.argv[1]))
audio_config = AudioConfig(sample_rate=8000, n_fft=64, win_length=64, hop_length=8, n_mels=6, f_max=4000.0)
torch.manual_seed(0)
model = WaveNet(config, n_mels=6, hop_length=8, audio=audio_config).eval()
with torch.no_grad():
    for p in model.parameters():  # weights large enough that every path matters to the output
        p.add_(torch.randn_like(p) * 0.2)
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(2, 6, 6, generator=g) - 3.0
    audio = torch.rand(2, 48, generator=g) * 1.8 - 0.9
    expected = model.distribution(model(audio, mel))
    # model.feedback: mu-law classes (plain) or pre-emphasised samples (LPC)
    forced = TritonSampler(model, mel, torch.tensor([6, 6]), forced=model.feedback(audio), record=True,
                           precise=True, chunk_frames=4)  # two launches: the state crosses a chunk boundary
    forced.run()
    lengths = torch.tensor([6, 4])
    temps = torch.tensor([[0.7] * 3 + [1.6] * 3, [1.3] * 6])  # each frame's own temperature
    drawn = model.finish(TritonSampler(model, mel, lengths, seed=5, precise=True, temperature=temps).run(), lengths)
    reference = model.generate(mel, lengths, seed=5, backend="torch", temperature=temps)
print(json.dumps({
    "receptive_field": model.receptive_field, "logit_std": expected.std().item(),
    "logit_error": (forced.logits.transpose(1, 2) - expected).abs().max().item(),
    "sample_error": (drawn - reference).abs().max().item(), "peak": drawn.abs().max().item(),
    "tail": drawn[1, 32:].abs().max().item(),
}))
"""


@pytest.mark.parametrize("settings", [{}, {"excitation": "lpc", "lpc_order": 4}, {"excitation": "lpc", "lpc_order": 6}],
                         ids=["plain", "lpc", "lpc-order-6"])
def test_triton_incremental_matches_teacher_forced_in_the_interpreter(settings):
    """Order 6 exercises the coefficients padded to a power of two (8)."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-c", INTERPRETED, json.dumps(dict(SMALL, **settings))], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert 48 > result["receptive_field"]  # the queues wrap around
    assert result["logit_std"] > 0.3
    assert result["logit_error"] < 1e-4  # the same logits as the teacher-forced forward pass
    assert result["sample_error"] < 1e-4 and result["peak"] > 0.05  # the same draws as the torch sampler
    assert result["tail"] == 0.0  # silence past the shorter utterance's length


def test_unsupported_models_are_named():
    from tts.models.wavenet_triton import unsupported

    assert unsupported(WaveNet(WaveNetConfig(**BENCH), n_mels=80, hop_length=256)) is None
    mol = WaveNet(WaveNetConfig(**dict(SMALL, output="mol")), n_mels=6, hop_length=8)
    assert unsupported(mol) == "output 'mol' (the kernel samples mu-law only)"
    narrow = WaveNet(WaveNetConfig(**dict(SMALL, residual_channels=24)), n_mels=6, hop_length=8)
    assert unsupported(narrow) == "residual_channels = 24 (must be a power of two, at least 16)"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA device"):
            WaveNet(WaveNetConfig(**SMALL), n_mels=6, hop_length=8).generate(torch.zeros(1, 6, 2), backend="triton")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_triton_incremental_matches_teacher_forced_on_gpu():
    from tts.models.wavenet_triton import TritonSampler

    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(**BENCH), n_mels=80, hop_length=256).cuda().eval()
    g = torch.Generator(device="cuda").manual_seed(1)
    frames = 8  # 2048 samples, more than the receptive field (2047)
    mel = torch.randn(3, 80, frames, device="cuda", generator=g) - 4.0
    audio = torch.rand(3, frames * 256, device="cuda", generator=g) * 1.8 - 0.9
    with torch.no_grad():
        expected = model(audio, mel)
        for precise, tolerance in ((True, 1e-3), (False, 5e-2)):  # float32 IEEE dots; float16 weights
            sampler = TritonSampler(model, mel, torch.tensor([frames] * 3), forced=mulaw_encode(audio).float(),
                                    record=True, precise=precise, chunk_frames=3)
            sampler.run()
            assert_close(sampler.logits.transpose(1, 2), expected, atol=tolerance, rtol=tolerance)
        lengths = torch.tensor([frames, 5, 2])
        wav = model.generate(mel, lengths, seed=2, backend="triton")
    assert wav.shape == (3, frames * 256) and torch.all(wav[1, 5 * 256:] == 0) and wav[2, :512].abs().max() > 0
