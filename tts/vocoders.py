"""The vocoders a voice speaks through, behind one narrow interface.

A vocoder turns mels into waveforms:

    vocoder.vocode(mels, seed=None, progress=False, on_audio=None) -> [(T_i * hop,) float32 in [-1, 1]]

for ``mels`` a sequence of (n_mels, T_i) tensors on the voice's device. ``on_audio(i, piece)``, when
given, receives consecutive pieces of waveform ``i`` as they are made (the WaveNet: one per sampler
chunk of a few frames; Griffin-Lim: the whole sentence), which is how the server streams; the
returned waveforms are the same whether or not it is given. ``name`` is what a voice card's
``default_vocoder`` and a user's ``--vocoder`` call it.

``Voice`` holds its vocoders by name (Griffin-Lim always, the WaveNet when its weights are loaded)
and picks one through ``VoiceCard.vocoder_for``; nothing else compares vocoder names.

This module imports nothing heavy at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np
    import torch

    from tts.config import AudioConfig
    from tts.models.wavenet import WaveNet

# Every vocoder type a voice can name, the neural one first.
VOCODER_NAMES = ("wavenet", "griffinlim")

OnAudio = Callable[[int, "np.ndarray"], None]

# Frames whose bands below 1 kHz average more than this many nats above those above 3 kHz are
# voiced (tts.audio.spectral_tilt); the rest (fricatives, bursts, closures, pauses) are not.
VOICED_TILT = 1.5


class Vocoder(Protocol):
    name: str
    per_item: bool  # one mel's samples depend on nothing else in the batch: a batch may be split up

    def vocode(self, mels: Sequence[torch.Tensor], *, seed: Optional[int] = None, progress: bool = False,
               on_audio: Optional[OnAudio] = None) -> list[np.ndarray]:
        ...


class GriffinLimVocoder:
    """Griffin-Lim phase reconstruction from the mel (tts.audio.griffin_lim), one sentence at a time.
    Its samples depend on nothing else in the batch, so a caller may split a batch across threads."""

    name = "griffinlim"
    per_item = True

    def __init__(self, audio: AudioConfig, device: torch.device):
        self.audio, self.device = audio, device
        self._inverse = None  # the filterbank's inverse, made on the first sentence (tts.audio.mel_inverse)

    def vocode(self, mels: Sequence[torch.Tensor], *, seed: Optional[int] = None, progress: bool = False,
               on_audio: Optional[OnAudio] = None) -> list[np.ndarray]:
        from tts.memory import release_freed_memory

        wavs = []
        for i, mel in enumerate(mels):  # one at a time, so the heap is trimmed between them (tts/memory.py)
            wavs.append(self.one(mel, seed))
            if on_audio is not None:
                on_audio(i, wavs[-1])
            release_freed_memory()
        return wavs

    def one(self, mel: torch.Tensor, seed: Optional[int]) -> np.ndarray:
        """(n_mels, T) -> (T * hop,) float32. The mel is padded with silence to cover one FFT window
        (a 1-frame mel has no inverse STFT), and the random initial phase is drawn from ``seed`` by
        its own generator: the caller's random state is untouched, and two threads may vocode at once."""
        import numpy as np
        import torch

        from tts.audio import griffin_lim, mel_inverse, mel_silence

        frames, hop = mel.shape[1], self.audio.hop_length
        needed = max(frames, self.audio.n_fft // hop + 2)
        padded = torch.nn.functional.pad(mel.float(), (0, needed - frames), value=mel_silence(self.audio))
        generator = torch.Generator(device=self.device).manual_seed(0 if seed is None else seed)
        if self._inverse is None:  # two threads may both make it: the same tensor, either kept
            self._inverse = mel_inverse(self.audio, self.device)
        wav = griffin_lim(padded, self.audio, generator=generator, inverse=self._inverse).cpu().numpy().astype(np.float32)
        out = np.zeros(frames * hop, dtype=np.float32)
        out[: min(len(wav), len(out))] = wav[: len(out)]
        return out


def voicing_temperatures(mels: torch.Tensor, audio: AudioConfig, voiced: float, unvoiced: float) -> torch.Tensor:
    """mels (B, n_mels, F) -> (B, F) sampling temperatures: ``voiced`` where the frame's spectral
    tilt says voiced (VOICED_TILT), ``unvoiced`` elsewhere. For the shipped voice, unvoiced frames
    sampled hotter gained words on the dev sentences the rule was chosen on and lost them on fresh
    ones (docs/wavenet.md), so its card keeps one temperature."""
    import torch

    from tts.audio import spectral_tilt

    tilt = spectral_tilt(mels, audio)
    return torch.where(tilt > VOICED_TILT, voiced, unvoiced).float()


class WaveNetVocoder:
    """The voice's WaveNet, sampled autoregressively (``WaveNet.generate``): a batch is one call, its
    random draws a function of (seed, position in the batch, sample index) alone."""

    name = "wavenet"
    per_item = False

    def __init__(self, model: WaveNet, audio: AudioConfig, device: torch.device, *, temperature: float = 1.0,
                 unvoiced_temperature: Optional[float] = None):
        self.model, self.audio, self.device = model, audio, device
        # the voice card's wavenet_temperature and wavenet_unvoiced_temperature (voicing_temperatures)
        self.temperature, self.unvoiced_temperature = temperature, unvoiced_temperature

    def vocode(self, mels: Sequence[torch.Tensor], *, seed: Optional[int] = None, progress: bool = False,
               on_audio: Optional[OnAudio] = None) -> list[np.ndarray]:
        import torch

        from tts.audio import mel_silence

        if not mels:
            return []
        hop = self.audio.hop_length
        lengths = torch.tensor([mel.shape[1] for mel in mels])
        batch = torch.full((len(mels), self.audio.n_mels, int(lengths.max())), mel_silence(self.audio),
                           device=self.device)
        for i, mel in enumerate(mels):
            batch[i, :, : mel.shape[1]] = mel
        ends = [int(n) * hop for n in lengths]

        def chunk(t0: int, pieces: torch.Tensor) -> None:  # (B, n) finished samples t0 .. t0 + n - 1
            host = pieces.float().cpu().numpy()
            for i, end in enumerate(ends):
                if t0 < end:
                    on_audio(i, host[i, : end - t0].copy())

        temperature = self.temperature
        if self.unvoiced_temperature is not None and self.unvoiced_temperature != self.temperature:
            temperature = voicing_temperatures(batch, self.audio, self.temperature, self.unvoiced_temperature)
        wav = self.model.generate(batch, lengths.to(self.device), temperature=temperature, seed=seed,
                                  progress=progress, on_chunk=None if on_audio is None else chunk)
        return [wav[i, :end].float().cpu().numpy() for i, end in enumerate(ends)]
