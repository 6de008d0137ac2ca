"""Linear prediction from the conditioning mel, for the excitation WaveNet (``vocoder.excitation: lpc``).

Per mel frame: log mel -> magnitude through the pseudo-inverse of the one mel filterbank
(tts.audio.MelSpectrogram) -> power spectrum, the band outside the filterbank's centres filled by
holding the edge levels, tilted by the pre-emphasis filter's response -> a relative noise floor ->
autocorrelation by inverse FFT -> a Gaussian lag window -> Levinson-Durbin with every reflection
coefficient clamped below 1 in magnitude, so the synthesis filter 1 / A(z) is always stable.

The same function serves training (ground-truth mels) and sampling (Tacotron's mels), so the
network never sees a prediction made any other way.

Convention: A(z) = 1 + sum_k a_k z^-k; the prediction is p_t = -sum_k a_k s'_(t-k) and the
excitation e_t = s'_t - p_t, where s' is the pre-emphasised signal s'_t = s_t - alpha * s_(t-1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tts.config import AudioConfig

# Power added to every bin, relative to the frame's mean power (-40 dB): keeps the normal
# equations well conditioned in silence and on pure tones, and stops the fit from spending poles
# on spectral valleys deeper than the mel can tell apart from noise.
NOISE_FLOOR = 1e-4
# Gaussian lag window: widens every resonance by about this bandwidth (Hz), so a mel-smoothed
# envelope cannot produce a pole next to the unit circle (G.729's choice is 60 Hz).
LAG_WINDOW_HZ = 60.0
# Largest reflection coefficient magnitude Levinson-Durbin may use: |k| < 1 keeps 1 / A(z) stable,
# and the margin bounds its gain.
MAX_REFLECTION = 0.999


def preemphasis(audio: torch.Tensor, alpha: float) -> torch.Tensor:
    """s'_t = s_t - alpha * s_(t-1) along the last dim (the sample before the start is 0)."""
    if alpha == 0:
        return audio
    return audio - alpha * F.pad(audio, (1, 0))[..., :-1]


def deemphasis(audio: torch.Tensor, alpha: float) -> torch.Tensor:
    """The inverse of ``preemphasis``: s_t = s'_t + alpha * s_(t-1), (..., T) -> (..., T)."""
    if alpha == 0:
        return audio
    import torchaudio.functional as AF

    x = audio.float()
    a = torch.tensor([1.0, -alpha], dtype=x.dtype, device=x.device)
    b = torch.tensor([1.0, 0.0], dtype=x.dtype, device=x.device)
    return AF.lfilter(x, a, b, clamp=False)


class Deemphasis:
    """``deemphasis`` over consecutive chunks (B, n) of one signal: the filter's last output is
    carried over, so the chunks' outputs are the values one call on the whole signal gives."""

    def __init__(self, alpha: float):
        self.alpha, self.last = alpha, None

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        if self.alpha == 0 or chunk.shape[-1] == 0:
            return chunk.float()
        if self.last is None:
            out = deemphasis(chunk, self.alpha)
        else:  # the previous output as the first input: with zero state before it, it is its own output
            out = deemphasis(torch.cat([self.last, chunk.float()], dim=-1), self.alpha)[..., 1:]
        self.last = out[..., -1:]
        return out


def levinson_durbin(r: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Autocorrelation r (..., order + 1) -> (a (..., order) with A(z) = 1 + sum a_k z^-k,
    reflection coefficients (..., order)), each reflection coefficient clamped to
    [-MAX_REFLECTION, MAX_REFLECTION]. r[..., 0] must be positive."""
    shape = r.shape[:-1]
    r = r.reshape(-1, r.shape[-1])
    a = r.new_zeros(r.shape[0], order + 1)
    a[:, 0] = 1.0
    err = r[:, 0]
    ks = []
    for i in range(1, order + 1):
        # acc = sum_{j=0}^{i-1} a_j r_(i-j)
        acc = (a[:, :i] * r[:, 1: i + 1].flip(-1)).sum(-1)
        k = (-acc / err).clamp(-MAX_REFLECTION, MAX_REFLECTION)
        # a_j <- a_j + k a_(i-j) for j = 1 .. i (a_i was 0, so a_i <- k)
        a = a.clone()
        a[:, 1: i + 1] = a[:, 1: i + 1] + k[:, None] * a[:, :i].flip(-1)
        err = err * (1.0 - k * k)
        ks.append(k)
    return a[:, 1:].reshape(*shape, order), torch.stack(ks, -1).reshape(*shape, order)


class LPCAnalysis(nn.Module):
    """Log mel -> per-frame LPC coefficients of the pre-emphasised signal.

    forward(mel (B, n_mels, F)) -> a (B, F, order) float32. Holds no parameters and no persistent
    buffers: a model's state dict is the same with or without it.
    """

    def __init__(self, audio: AudioConfig, *, order: int, alpha: float):
        super().__init__()
        from tts.audio import MelSpectrogram

        self.order, self.alpha, self.n_fft = order, float(alpha), audio.n_fft
        with torch.device("cpu"):  # real values even when the model is built on the meta device
            self._build(audio, MelSpectrogram(audio).filterbank.double())

    def _build(self, audio: AudioConfig, fbank: torch.Tensor) -> None:
        """fbank (n_mels, n_freqs) float64 -> the buffers."""
        order = self.order
        self.register_buffer("inverse", torch.linalg.pinv(fbank).float(), persistent=False)  # (n_freqs, n_mels)
        # The band outside the filterbank's first and last centres is not measured by the mel:
        # it holds the level at those centres (see docs/wavenet.md for why).
        centres = fbank.argmax(dim=1)
        self.low, self.high = int(centres[0]), int(centres[-1])
        omega = torch.linspace(0.0, math.pi, audio.n_fft // 2 + 1, dtype=torch.float64)
        tilt = 1.0 + self.alpha ** 2 - 2.0 * self.alpha * torch.cos(omega)  # |1 - alpha e^-jw|^2
        self.register_buffer("tilt", tilt.float(), persistent=False)
        lags = torch.arange(order + 1, dtype=torch.float64)
        lag_window = torch.exp(-0.5 * (2.0 * math.pi * LAG_WINDOW_HZ * lags / audio.sample_rate) ** 2)
        self.register_buffer("lag_window", lag_window.float(), persistent=False)

    def power(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, F) -> approximate power spectrum of the pre-emphasised signal (B, F, n_freqs), float64."""
        mag = torch.einsum("km,bmf->bfk", self.inverse.double(), mel.double().clamp(max=30.0).exp())
        mag = mag.clamp(min=0.0)
        mag = torch.cat([mag[..., self.low: self.low + 1].expand(-1, -1, self.low), mag[..., self.low: self.high + 1],
                         mag[..., self.high: self.high + 1].expand(-1, -1, mag.shape[-1] - self.high - 1)], dim=-1)
        power = mag * mag * self.tilt.double()
        return power + NOISE_FLOOR * power.mean(-1, keepdim=True) + 1e-30

    def reflection(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, n_mels, F) -> (a (B, F, order), reflection coefficients (B, F, order)), float64."""
        with torch.autocast(device_type=mel.device.type, enabled=False):
            r = torch.fft.irfft(self.power(mel), n=self.n_fft, dim=-1)[..., : self.order + 1]
            r = r * self.lag_window.double()
            return levinson_durbin(r, self.order)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.reflection(mel)[0].float()


def keep_out_of_compiled_graphs() -> None:
    """Leave LPCAnalysis out of torch.compile graphs (a few small ops per frame, and Levinson-Durbin's
    loop would unroll into a large graph for no gain). Called by whoever compiles a model that holds
    one, not at import: ``torch.compiler.disable`` imports torch._dynamo, which took 4.5 s of a
    cold `tts synth` that never compiles anything."""
    if not getattr(LPCAnalysis.forward, "_torchdynamo_disable", False):
        LPCAnalysis.forward = torch.compiler.disable(LPCAnalysis.forward)


def predict(signal: torch.Tensor, coeffs: torch.Tensor, hop: int) -> torch.Tensor:
    """The linear prediction p_t = -sum_k a_k(frame t // hop) s_(t-k), clipped to [-1, 1].

    signal (B, T) with T == F * hop (samples before the start are 0); coeffs (B, F, order) -> (B, T).
    Coefficients are held for the hop samples of their frame.
    """
    B, T = signal.shape
    order = coeffs.shape[-1]
    past = F.pad(signal.float(), (order, 0)).unfold(1, order, 1)[:, :T]  # past[:, t, j] = s_(t - order + j)
    a = coeffs.float()[:, :, None, :].expand(-1, -1, hop, -1).reshape(B, T, order)  # held per frame
    return -(a.flip(-1) * past).sum(-1).clamp(-1.0, 1.0)
