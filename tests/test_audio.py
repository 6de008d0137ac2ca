import math

import numpy as np
import pytest
import soundfile as sf
import torch

from tts.audio import AudioError, MelSpectrogram, griffin_lim, load_wav, mel_inverse, num_frames, save_wav
from tts.config import AudioConfig

AUDIO = AudioConfig()


@pytest.mark.parametrize("n_samples", [1, 255, 256, 257, 513, 22050])
def test_mel_frame_count(n_samples):
    mel = MelSpectrogram(AUDIO)(torch.randn(n_samples))
    assert mel.shape == (AUDIO.n_mels, num_frames(n_samples, AUDIO)) == (80, n_samples // 256 + 1)


def test_batched_mel_matches_single():
    wav = torch.randn(2, 4000)
    mel = MelSpectrogram(AUDIO)
    torch.testing.assert_close(mel(wav)[1], mel(wav[1]))


@pytest.mark.parametrize("freq", [250.0, 1000.0, 4000.0])
def test_sine_lands_in_the_right_mel_bin(freq):
    import librosa

    t = torch.arange(AUDIO.sample_rate) / AUDIO.sample_rate
    mel = MelSpectrogram(AUDIO)(torch.sin(2 * math.pi * freq * t))
    peak_bin = int(mel[:, 5:-5].mean(dim=1).argmax())
    centres = librosa.mel_frequencies(n_mels=AUDIO.n_mels + 2, fmin=AUDIO.f_min, fmax=AUDIO.f_max)[1:-1]
    expected = int(np.argmin(np.abs(centres - freq)))
    assert abs(peak_bin - expected) <= 1
    # Silence sits at the floor, not at -inf.
    silent = MelSpectrogram(AUDIO)(torch.zeros(4096))
    assert torch.allclose(silent, torch.full_like(silent, math.log(AUDIO.log_floor)))


def test_filterbank_is_a_buffer_not_a_parameter():
    module = MelSpectrogram(AUDIO)
    assert "filterbank" in dict(module.named_buffers())
    assert list(module.parameters()) == []


def test_wav_round_trip(tmp_path):
    wav = (0.5 * np.sin(np.linspace(0, 200, 5000))).astype(np.float32)
    save_wav(tmp_path / "a.wav", wav, AUDIO.sample_rate)
    back = load_wav(tmp_path / "a.wav", AUDIO)
    assert back.dtype == np.float32 and back.shape == wav.shape
    np.testing.assert_allclose(back, wav, atol=1 / 32767 + 1e-6)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left nothing behind


def test_resample_when_asked(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    assert load_wav(tmp_path / "a.wav", AUDIO, resample=True).shape == (22050,)


def _write(path, data, rate=22050, **kw):
    sf.write(path, data, rate, **kw)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: _write(p, np.zeros(100, dtype=np.float32), rate=16000), "sample rate is 16000 Hz, expected 22050"),
        (lambda p: _write(p, np.zeros((100, 2), dtype=np.float32)), "has 2 channels"),
        (lambda p: _write(p, np.array([0.0, np.nan, 0.1], dtype=np.float32), subtype="FLOAT"), "NaN or infinite"),
        (lambda p: _write(p, np.zeros(0, dtype=np.float32)), "no samples"),
        (lambda p: p.write_bytes(b"this is not a wav file"), "cannot read audio"),
        (lambda p: None, "no such file"),
    ],
    ids=["wrong-rate", "stereo", "non-finite", "empty", "unreadable", "missing"],
)
def test_bad_wav_files_name_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as err:
        load_wav(path, AUDIO)
    assert str(path) in str(err.value)


def test_griffin_lim_gives_audio_of_the_right_length():
    t = torch.arange(8192) / AUDIO.sample_rate
    mel = MelSpectrogram(AUDIO)(0.5 * torch.sin(2 * math.pi * 440 * t))
    wav = griffin_lim(mel, AUDIO, n_iter=4)
    assert wav.shape == ((mel.shape[1] - 1) * AUDIO.hop_length,)
    assert wav.abs().max() <= 1.0 and torch.isfinite(wav).all()


@pytest.mark.parametrize("audio", [
    AUDIO,
    AudioConfig(sample_rate=8000, n_fft=256, hop_length=64, win_length=200, n_mels=20, f_max=4000.0),
    AudioConfig(sample_rate=8000, n_fft=256, hop_length=80, win_length=256, n_mels=20, f_max=4000.0),  # torch.istft
])
def test_griffin_lims_transforms_are_torchs_frame_major(audio):
    """The spelled-out STFT is torch.stft's, transposed, to the bit; the inverse is torch.istft's."""
    from tts.audio import _FrameMajorSTFT

    frames = 21
    transforms = _FrameMajorSTFT(audio, frames, torch.device("cpu"))
    wav = torch.randn(audio.hop_length * (frames - 1), generator=torch.Generator().manual_seed(2))
    window = torch.hann_window(audio.win_length)
    ours = transforms.stft(wav)
    theirs = torch.stft(wav, audio.n_fft, audio.hop_length, audio.win_length, window, center=True,
                        pad_mode="reflect", return_complex=True)
    assert ours.is_contiguous() and ours.shape == (frames, audio.n_fft // 2 + 1)
    assert torch.equal(ours, theirs.T)
    back = torch.istft(theirs, audio.n_fft, audio.hop_length, audio.win_length, window)
    torch.testing.assert_close(transforms.istft(ours), back, rtol=0, atol=1e-6)


@pytest.mark.parametrize("audio, frames", [
    (AUDIO, 40),  # the default voice's STFT: the spelled-out inverse STFT
    (AudioConfig(sample_rate=8000, n_fft=256, hop_length=64, win_length=200, n_mels=20, f_max=4000.0), 5),
    (AudioConfig(sample_rate=8000, n_fft=256, hop_length=64, win_length=200, n_mels=20, f_max=4000.0), 23),
    (AudioConfig(sample_rate=8000, n_fft=256, hop_length=80, win_length=256, n_mels=20, f_max=4000.0), 17),  # torch.istft
])
def test_griffin_lim_matches_torchaudios_samples(audio, frames):
    """The same steps as torchaudio's GriffinLim; only the rounding of the phase normalisation differs."""
    import torchaudio.transforms as AT

    mel = torch.randn(audio.n_mels, frames, generator=torch.Generator().manual_seed(frames)) - 4
    magnitude = (torch.linalg.pinv(MelSpectrogram(audio).filterbank) @ mel.exp()).clamp(min=0.0) ** 1.3
    torch.manual_seed(11)
    reference = AT.GriffinLim(n_fft=audio.n_fft, n_iter=8, win_length=audio.win_length,
                              hop_length=audio.hop_length, power=1.0)(magnitude)
    ours = griffin_lim(mel, audio, n_iter=8, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(ours, reference / reference.abs().max() * 0.95, rtol=0, atol=2e-5)
    inverse = mel_inverse(audio, mel.device)  # made once by a caller with many sentences: the same samples
    again = griffin_lim(mel, audio, n_iter=8, generator=torch.Generator().manual_seed(11), inverse=inverse)
    assert torch.equal(again, ours)
