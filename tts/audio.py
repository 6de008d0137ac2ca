"""The only wav, STFT and mel code in the project.

Frame convention: a waveform of T samples gives ``T // hop_length + 1`` mel frames (centred STFT).
Vocoder training pairs ``F`` frames with ``F * hop_length`` samples, dropping the last frame.
"""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from torch import nn

from tts.config import AudioConfig
from tts.errors import TTSError

PathLike = Union[str, os.PathLike]


class AudioError(TTSError):
    """A wav file that cannot be used; the message names the file and what to fix."""


def mel_silence(audio: AudioConfig) -> float:
    """The log-mel value of silence, log(audio.log_floor): what every mel is padded with."""
    return math.log(audio.log_floor)


def num_frames(n_samples: int, audio: AudioConfig) -> int:
    return n_samples // audio.hop_length + 1


class MelSpectrogram(nn.Module):
    """Waveform -> natural-log mel spectrogram under one AudioConfig.

    forward(wav: (B, T) or (T,)) -> (B, n_mels, T // hop + 1) or (n_mels, T // hop + 1)
    """

    def __init__(self, audio: AudioConfig):
        super().__init__()
        import torchaudio.functional as AF

        self.audio = audio
        # Slaney-style mel scale and area normalisation, as librosa and most Tacotron recipes use.
        fbank = AF.melscale_fbanks(
            n_freqs=audio.n_fft // 2 + 1,
            f_min=audio.f_min,
            f_max=audio.f_max,
            n_mels=audio.n_mels,
            sample_rate=audio.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("filterbank", fbank.T.contiguous(), persistent=False)  # (n_mels, n_freqs)
        self.register_buffer("window", torch.hann_window(audio.win_length), persistent=False)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> linear STFT magnitude (B, n_fft // 2 + 1, frames)."""
        a = self.audio
        spec = torch.stft(
            wav, n_fft=a.n_fft, hop_length=a.hop_length, win_length=a.win_length, window=self.window,
            # reflect padding needs more samples than n_fft // 2; very short clips are zero-padded
            center=True, pad_mode="reflect" if wav.shape[-1] > a.n_fft // 2 else "constant", return_complex=True,
        )
        return spec.abs()

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        squeeze = wav.dim() == 1
        if squeeze:
            wav = wav.unsqueeze(0)
        mel = torch.matmul(self.filterbank, self.magnitude(wav.float()))
        mel = torch.log(torch.clamp(mel, min=self.audio.log_floor))  # silence is mel_silence(audio)
        return mel.squeeze(0) if squeeze else mel


class _FrameMajorSTFT:
    """Griffin-Lim's two transforms for one signal of ``frames`` frames, on spectra laid out
    frame-major, (frames, n_freqs) contiguous, which is how the FFTs make and take them.
    torch.stft hands back the transposed view of that, so every elementwise step of the loop on
    it ran strided, several times slower (docs/synthesis.md).

    ``stft(wav)`` is ``torch.stft(wav, center=True, pad_mode="reflect").T``, its steps spelled out
    (reflect padding, framing, window, real FFT): the same samples to the bit. ``istft(spec)`` is
    ``torch.istft(spec.T, center=True)``; when ``n_fft`` is a multiple of the hop it is spelled out
    too: torch.istft makes the window envelope anew on every call and overlap-adds through
    unfold_backward, more than half of its time; here the envelope is made once and the overlap-add
    is ``n_fft // hop`` shifted adds, the earliest frame's first as unfold_backward adds them (the
    same operations in the same order, so the same samples to the bit; tests/test_audio.py)."""

    def __init__(self, audio: AudioConfig, frames: int, device: torch.device):
        n_fft, hop = audio.n_fft, audio.hop_length
        left = (n_fft - audio.win_length) // 2  # torch centres a shorter window in n_fft
        self.hann = torch.hann_window(audio.win_length, device=device)
        self.window = nn.functional.pad(self.hann, (left, n_fft - audio.win_length - left))
        self.audio, self.n_fft, self.hop, self.frames = audio, n_fft, hop, frames
        self.trim = slice(n_fft // 2, n_fft + hop * (frames - 1) - n_fft // 2)
        self.envelope = None
        if n_fft % hop == 0:
            self.envelope = self._overlap_add(self.window.pow(2).expand(frames, n_fft))[self.trim]
            if float(self.envelope.abs().min()) < 1e-11:
                raise ValueError(f"the window's overlap-add has zeros (n_fft {n_fft}, hop {hop}, "
                                 f"win {audio.win_length})")

    def _overlap_add(self, pieces: torch.Tensor) -> torch.Tensor:
        """(frames, n_fft) -> (n_fft + hop * (frames - 1),): piece f added at f * hop."""
        parts = self.n_fft // self.hop
        shifted = pieces.reshape(self.frames, parts, self.hop)
        out = pieces.new_zeros(self.frames + parts - 1, self.hop)
        for k in reversed(range(parts)):  # at each sample, the earliest frame's piece first
            out[k:k + self.frames] += shifted[:, k]
        return out.reshape(-1)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """(frames, n_freqs) complex -> (hop * (frames - 1),)."""
        if self.envelope is None:
            return torch.istft(spec.T, n_fft=self.n_fft, hop_length=self.hop, win_length=self.audio.win_length,
                               window=self.hann)
        pieces = torch.fft.irfft(spec, self.n_fft, -1) * self.window
        return self._overlap_add(pieces)[self.trim] / self.envelope

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """(samples,) -> (frames, n_freqs) complex, contiguous."""
        half = self.n_fft // 2
        padded = nn.functional.pad(wav[None, None], (half, half), mode="reflect")[0, 0]
        return torch.fft.rfft(padded.unfold(0, self.n_fft, self.hop) * self.window, dim=-1)


def _phase_step(rebuilt: torch.Tensor, previous: Optional[torch.Tensor], momentum: float,
                magnitude: torch.Tensor) -> torch.Tensor:
    """One Griffin-Lim phase update, as real pairs (..., 2): the unit phasors of
    ``rebuilt - momentum * previous`` (``previous`` None on the first step) times ``magnitude``
    (...), for real-pair ``rebuilt`` and ``previous``. Complex abs and division are several times
    slower than the same arithmetic on the pairs."""
    pairs = rebuilt.clone() if previous is None else previous.mul(-momentum).add_(rebuilt)
    squares = pairs * pairs
    scale = torch.add(squares[..., 0], squares[..., 1]).add_(1e-32).rsqrt_().mul_(magnitude)
    return pairs.mul_(scale.unsqueeze(-1))


def mel_inverse(audio: AudioConfig, device: torch.device) -> torch.Tensor:
    """The least-squares inverse of the mel filterbank, (n_freqs, n_mels): an SVD, which a caller
    vocoding many sentences makes once and passes to griffin_lim (docs/server.md)."""
    return torch.linalg.pinv(MelSpectrogram(audio).filterbank.to(device))


def griffin_lim(mel: torch.Tensor, audio: AudioConfig, n_iter: int = 32, power: float = 1.3, *,
                generator: Optional[torch.Generator] = None, inverse: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Log mel (n_mels, frames) -> waveform (samples,), for listening before a vocoder exists.

    The mel filterbank is inverted by least squares; the phase comes from Griffin-Lim with
    momentum 0.99, the same steps as torchaudio's GriffinLim (whose samples this matches up to
    rounding, faster: the spectra frame-major and contiguous, the inverse STFT spelled out, and the
    phases normalised on real pairs; docs/synthesis.md). The random initial phase is drawn from
    ``generator`` (None: torch's global generator, as torchaudio does); an own generator lets two
    threads run this at once and each still get its seed's samples (the speech server vocodes
    sentences in parallel).
    """
    if inverse is None:
        inverse = mel_inverse(audio, mel.device)
    magnitude = inverse @ mel.float().exp()  # (n_freqs, frames)
    magnitude = magnitude.clamp(min=0.0) ** power
    transforms = _FrameMajorSTFT(audio, magnitude.shape[1], mel.device)
    momentum = 0.99 / (1 + 0.99)  # torchaudio's default 0.99, in its form
    # torchaudio's initial phases (uniform real and imaginary parts, not unit phasors), drawn as
    # (n_freqs, frames) as it draws them; from here on everything is frame-major and contiguous.
    angles = torch.rand(magnitude.size(), dtype=torch.complex64, device=mel.device, generator=generator)
    magnitude = magnitude.T.contiguous()
    spectrum = torch.view_as_real(angles.T.contiguous()) * magnitude.unsqueeze(-1)
    previous = None
    for _ in range(n_iter):
        rebuilt = torch.view_as_real(transforms.stft(transforms.istft(torch.view_as_complex(spectrum))))
        spectrum = _phase_step(rebuilt, previous, momentum, magnitude)
        previous = rebuilt
    wav = transforms.istft(torch.view_as_complex(spectrum))
    peak = wav.abs().max()
    return wav / peak * 0.95 if peak > 0 else wav


def spectral_tilt(mel: torch.Tensor, audio: AudioConfig, low_hz: float = 1000.0,
                  high_hz: float = 3000.0) -> torch.Tensor:
    """Log mel (..., n_mels, frames) -> (..., frames): the mean of the bands centred below ``low_hz``
    minus the mean of those centred above ``high_hz``, in nats. Vowels, nasals and other voiced
    frames stand 2-4 above zero; fricatives and bursts below it; silence near it."""
    import librosa

    centres = librosa.mel_frequencies(n_mels=audio.n_mels + 2, fmin=audio.f_min, fmax=audio.f_max)[1:-1]
    low = torch.from_numpy(centres < low_hz).to(mel.device)
    high = torch.from_numpy(centres > high_hz).to(mel.device)
    if not low.any() or not high.any():
        raise ValueError(f"no mel band centred below {low_hz:g} Hz or above {high_hz:g} Hz "
                         f"(f_min {audio.f_min:g}, f_max {audio.f_max:g})")
    mel = mel.float()
    return mel[..., low, :].mean(-2) - mel[..., high, :].mean(-2)


def load_wav(path: PathLike, audio: AudioConfig, *, resample: bool = False) -> np.ndarray:
    """Read a mono wav as float32 in [-1, 1] at audio.sample_rate; (T,).

    Raises AudioError naming the file when it is unreadable, empty, not mono, not finite, or at
    another sample rate (unless ``resample`` is set).
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for broken files
        raise AudioError(f"{path}: cannot read audio ({str(err).splitlines()[0]})") from None
    if wav.shape[1] != 1:
        raise AudioError(f"{path}: has {wav.shape[1]} channels; convert it to mono")
    wav = wav[:, 0]
    if wav.size == 0:
        raise AudioError(f"{path}: contains no samples")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    if rate != audio.sample_rate:
        if not resample:
            raise AudioError(
                f"{path}: sample rate is {rate} Hz, expected {audio.sample_rate} Hz "
                f"(resample the corpus, or set data.resample=true)"
            )
        wav = resample_wav(wav, rate, audio.sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def resample_wav(wav: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(T,) float32 at ``from_rate`` -> (about T * to_rate / from_rate,) float32 at ``to_rate``."""
    if from_rate == to_rate:
        return np.asarray(wav, dtype=np.float32)
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.asarray(wav, dtype=np.float32)), from_rate, to_rate).numpy()


def wav_bytes(wav: Union[np.ndarray, torch.Tensor], sample_rate: int) -> bytes:
    """16-bit PCM WAV file contents."""
    import soundfile as sf

    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def save_wav(path: Union[PathLike, BinaryIO], wav: Union[np.ndarray, torch.Tensor], sample_rate: int) -> None:
    """Write 16-bit PCM. ``"-"`` writes to stdout. A file appears whole or not at all."""
    data = wav_bytes(wav, sample_rate)
    if str(path) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    atomic_write(Path(path), data)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: a reader sees the old
    file or the new one, never a part. The file gets the permissions a plain open() would give it
    (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only set it, and setting it even
    for a moment would race with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
