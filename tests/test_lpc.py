"""The excitation (LPC) WaveNet: linear prediction from the mel (tts.models.lpc) recovers known AR
coefficients and stays stable on extreme mels; the LPC samplers equal the teacher-forced forward."""

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from tests.conftest import random_wavenet
from tts.audio import MelSpectrogram
from tts.config import AudioConfig, ConfigError, WaveNetConfig
from tts.models.lpc import LPCAnalysis, deemphasis, preemphasis
from tts.models.wavenet import TorchSampler, WaveNet
from tts.models.wavenet_fast import FastSampler

SMALL_AUDIO = AudioConfig(sample_rate=8000, n_fft=64, win_length=64, hop_length=8, n_mels=6, f_max=4000.0)


def ar_signal(poles, n, rate, seed=0):
    """White noise through 1 / A(z) with the given (frequency Hz, radius) pole pairs -> (A[1:], signal)."""
    roots = []
    for freq, radius in poles:
        w = 2 * np.pi * freq / rate
        roots += [radius * np.exp(1j * w), radius * np.exp(-1j * w)]
    a = np.real(np.poly(roots))
    noise = np.random.default_rng(seed).standard_normal(n)
    x = np.zeros(n)
    for t in range(n):  # direct form: x_t = e_t - sum_k a_k x_(t-k)
        x[t] = noise[t] - sum(a[k] * x[t - k] for k in range(1, len(a)) if t >= k)
    return a[1:], (x / np.abs(x).max() * 0.5).astype(np.float32)


def test_lpc_recovers_known_ar_coefficients_from_the_mel():
    audio = AudioConfig(f_max=11025.0)  # the mel covers the whole band: nothing is filled in
    a_true, x = ar_signal([(700, 0.8), (2500, 0.7)], 22050, audio.sample_rate)
    mel = MelSpectrogram(audio)(torch.from_numpy(x))[None]
    a = LPCAnalysis(audio, order=4, alpha=0.0)(mel)[0, 3:-3].double().mean(0).numpy()
    # The mel smooths the spectrum, and the noise floor and lag window flatten it a little, so the
    # fit is close, not exact (measured: largest error 0.35; with no floor and no lag window, ~0.1).
    assert np.abs(a - a_true).max() < 0.5, (a, a_true)


def test_prediction_from_the_mel_whitens_the_preemphasised_signal():
    audio = AudioConfig()
    _, x = ar_signal([(500, 0.9), (1500, 0.85)], 11025, audio.sample_rate, seed=1)
    wav = torch.from_numpy(x)
    mel = MelSpectrogram(audio)(wav)[None][:, :, :-1]
    config = WaveNetConfig(excitation="lpc", lpc_order=16, layers=2, stacks=1)
    model = WaveNet(config, n_mels=80, hop_length=256, audio=audio)
    T = mel.shape[2] * 256
    s = model.preemphasized(wav[None, :T])
    from tts.models.lpc import predict

    e = s - predict(s, model.lpc_coefficients(mel), 256)
    gain_db = 10 * torch.log10(s.pow(2).sum() / e.pow(2).sum())
    assert gain_db > 10.0, float(gain_db)


def test_synthesis_filter_stays_stable_on_extreme_mels():
    audio = AudioConfig()
    analysis = LPCAnalysis(audio, order=20, alpha=0.85)
    floor = float(np.log(audio.log_floor))
    g = torch.Generator().manual_seed(0)
    mels = [torch.full((80, 3), floor), torch.full((80, 3), 25.0), torch.randn(80, 3, generator=g) * 20.0,
            torch.full((80, 3), floor).index_fill_(0, torch.tensor([40]), 10.0),  # a pure tone
            torch.linspace(floor, 12.0, 80)[:, None].expand(80, 3).contiguous()]
    for mel in mels:
        a, k = analysis.reflection(mel[None])
        assert torch.isfinite(a).all() and k.abs().max() < 1.0
        for row in a[0]:
            roots = np.roots(np.r_[1.0, row.numpy()])
            assert np.abs(roots).max() < 1.0  # 1 / A(z) is stable
        # Run the synthesis filter on noise for many samples: it stays bounded.
        coeffs = a[0, 0].numpy()
        y = np.zeros(4000)
        e = np.random.default_rng(0).standard_normal(4000) * 1e-3
        for t in range(4000):
            y[t] = e[t] - sum(coeffs[j] * y[t - 1 - j] for j in range(len(coeffs)) if t - 1 - j >= 0)
        assert np.isfinite(y).all() and np.abs(y[-500:]).max() < 1e3


def test_preemphasis_and_deemphasis_invert_each_other():
    x = torch.rand(2, 500) * 2 - 1
    assert_close(deemphasis(preemphasis(x, 0.85), 0.85), x, atol=1e-5, rtol=0)


def tiny_lpc(output, seed=0):
    config = WaveNetConfig(layers=8, stacks=2, kernel_size=2, residual_channels=8, gate_channels=16, skip_channels=8,
                           upsample_scales=(2, 4), output=output, mixtures=3, excitation="lpc", lpc_order=4)
    return random_wavenet(config, n_mels=6, hop_length=8, audio=SMALL_AUDIO, seed=seed)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 80, generator=g) - 0.5, torch.randn(2, 6, 10, generator=g) - 3.0


@pytest.mark.parametrize("output", ["mulaw", "mol"])
def test_lpc_incremental_matches_teacher_forced(batch, output):
    audio, mel = batch
    model = tiny_lpc(output)
    with torch.no_grad():
        expected = model.distribution(model(audio, mel))
        sampler = TorchSampler(model, mel, torch.tensor([10, 10]), forced=model.feedback(audio), record=True,
                               chunk_frames=3)
        sampler.run()
    assert expected.std() > 0.3
    assert_close(sampler.logits.transpose(1, 2), expected, atol=1e-4, rtol=1e-4)
    for threads in (1, 2):
        sampler = FastSampler(model, mel, torch.tensor([10, 10]), forced=model.feedback(audio), record=True,
                              threads=threads, chunk_frames=3)
        sampler.run()
        assert_close(sampler.logits.transpose(1, 2), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output", ["mulaw", "mol"])
def test_lpc_fast_and_torch_draw_the_same_waveform(batch, output):
    _, mel = batch
    model = tiny_lpc(output)
    lengths = torch.tensor([10, 7])
    fast = model.generate(mel, lengths, seed=5, backend="fast")
    slow = model.generate(mel, lengths, seed=5, backend="torch")
    assert fast.abs().max() > 0.05 and torch.all(fast[1, 7 * 8:] == 0)
    assert_close(fast, slow, atol=1e-4, rtol=0)


def test_noise_injection_changes_training_targets_only(batch):
    audio, mel = batch
    config = WaveNetConfig(layers=2, stacks=1, residual_channels=8, gate_channels=16, skip_channels=8,
                           upsample_scales=(2, 4), excitation="lpc", lpc_order=4, noise_injection=4.0)
    model = WaveNet(config, n_mels=6, hop_length=8, audio=SMALL_AUDIO)
    model.eval()
    assert torch.equal(model(audio, mel), model(audio, mel))
    model.train()
    assert not torch.equal(model(audio, mel)[:, -1], model(audio, mel)[:, -1])


def test_plain_wavenet_state_dict_is_unchanged_and_lpc_needs_audio():
    plain = WaveNet(WaveNetConfig(layers=2, stacks=1), n_mels=80, hop_length=256)
    assert not any(k.startswith(("lpc", "input_pred", "input_exc", "input_lpc")) for k in plain.state_dict())
    with pytest.raises(ValueError, match="audio config"):
        WaveNet(WaveNetConfig(layers=2, stacks=1, excitation="lpc"), n_mels=80, hop_length=256)
    for bad, key in [(dict(excitation="lcp"), "vocoder.excitation"), (dict(lpc_order=0), "vocoder.lpc_order"),
                     (dict(preemphasis=1.0), "vocoder.preemphasis"),
                     (dict(noise_injection=-1.0), "vocoder.noise_injection")]:
        with pytest.raises(ConfigError, match=key):
            WaveNetConfig(**bad)


def test_an_lpc_voice_loads_and_speaks_through_the_voice_api(tmp_path):
    """A voice whose card says excitation=lpc is rebuilt with its audio settings (the LPC filter
    needs the filterbank) and speaks through tts.voice.Voice, as `tts synth` does."""
    from tests.conftest import TINY_VOICE_SETTINGS
    from tts.config import load_recipe
    from tts.voice import Voice, write_untrained_voice

    recipe = load_recipe("tiny", TINY_VOICE_SETTINGS + ["vocoder.excitation=lpc"])
    voice = Voice.load(write_untrained_voice(tmp_path / "lpc", recipe), device="cpu")
    assert voice.vocoder.config.excitation == "lpc"
    wav = voice.synthesize(["Hi."], vocoder="wavenet", seed=0)[0]
    assert wav.dtype == np.float32 and len(wav) > 0
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0


def test_loading_a_voice_does_not_import_the_compiler():
    """torch._dynamo costs seconds to import; synthesis never compiles, so loading the models must
    not pull it in (the LPC analysis is kept out of compiled graphs only when something compiles)."""
    import subprocess
    import sys

    code = ("import sys, tts.voice, tts.models.wavenet, tts.models.lpc; "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_keep_out_of_compiled_graphs_disables_the_analysis_once():
    from tts.models import lpc

    original = lpc.LPCAnalysis.forward
    try:
        lpc.keep_out_of_compiled_graphs()
        disabled = lpc.LPCAnalysis.forward
        assert disabled is not original and getattr(disabled, "_torchdynamo_disable", False)
        lpc.keep_out_of_compiled_graphs()
        assert lpc.LPCAnalysis.forward is disabled
    finally:
        lpc.LPCAnalysis.forward = original
