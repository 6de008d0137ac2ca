"""What every WaveNet sampler shares: the mu-law codec, the counter-based random draws, the
skeleton of a run (chunk loop, progress bar, final mask) and the packed-weights view the kernels read.

The backends (``TorchSampler`` in tts.models.wavenet, ``FastSampler`` in tts.models.wavenet_fast,
``TritonSampler`` in tts.models.wavenet_triton) subclass ``Sampler`` and implement ``begin`` (fresh
incremental state) and ``chunk`` (the samples of a few frames). This module and the kernel modules
never import tts.models.wavenet: they are handed a WaveNet and read its modules, so
``WaveNet.generate`` can import a backend lazily without an import circle.

The contract, the same on every backend:
- ``Sampler(model, mel (B, n_mels, F), lengths (B,) frames, temperature=, seed=, forced=, record=)``;
  ``temperature`` is one number or (B, F) per frame, held for the frame's hop samples;
- ``run(progress, on_chunk)`` -> (B, F * hop) float32 on ``device``, zero past each lengths[b] * hop:
  mu-law or mixture samples for a plain model, s' (pre-emphasised, before ``WaveNet.finish``) for
  LPC; ``on_chunk(t0, samples)`` sees each chunk as it is made (streaming);
- draw j in {0, 1} of sample t of utterance b is ``uniforms(stream_keys(seed, B), t, 1)[b, 0, j]``,
  so a seed gives the same samples whatever the backend, batch split, chunking or thread count;
- ``forced`` (B, T): the values fed back after each step instead of the drawn ones (mu-law classes
  as floats, samples, or s' for LPC: ``WaveNet.feedback``), and ``record=True`` keeps every step's
  output in ``logits`` (B, T, out_channels): the teacher-forced checks against the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Union

import numpy as np
import torch

if TYPE_CHECKING:  # annotations only: importing it here would be the circle this module breaks
    from tts.models.wavenet import WaveNet

# Smallest log scale of a logistic component: its scale (1e-7) is well below one 16-bit bin.
LOG_SCALE_MIN = -16.0
# Frames of context each side that the upsampler's output for one frame can depend on.
CONTEXT_FRAMES = 2
GOLDEN = 0x9E3779B97F4A7C15  # splitmix64 increment
_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Mu-law


def mulaw_encode(audio: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Float audio in [-1, 1], any shape -> mu-law class indices (same shape, int64 in [0, channels))."""
    import torchaudio.functional as AF

    return AF.mu_law_encoding(audio.float().clamp(-1.0, 1.0), channels)


def mulaw_decode(classes: torch.Tensor, channels: int = 256) -> torch.Tensor:
    """Mu-law class indices, any shape -> float32 audio in [-1, 1]."""
    import torchaudio.functional as AF

    return AF.mu_law_decoding(classes, channels).float()


# ---------------------------------------------------------------------------------------------
# Random draws: a counter-based splitmix64, so draw j of sample t of utterance b is a pure
# function of (seed, b, t, j) whatever the backend, batch split or chunking.


def splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's output function, uint64 array -> uint64 array (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def stream_keys(seed: Optional[int], batch: int) -> np.ndarray:
    """One uint64 key per utterance. ``seed=None`` draws a fresh seed."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy) & _MASK64
    base = np.uint64(int(seed) & _MASK64)
    with np.errstate(over="ignore"):
        return splitmix64(base + (np.arange(batch, dtype=np.uint64) + np.uint64(1)) * np.uint64(GOLDEN))


def uniforms(keys: np.ndarray, t0: int, n: int) -> np.ndarray:
    """Draws for samples t0 .. t0 + n - 1: (B, n, 2) float64 in the open interval (0, 1)."""
    counter = 2 * (t0 + np.arange(n, dtype=np.uint64))[None, :, None] + np.arange(2, dtype=np.uint64)[None, None, :]
    with np.errstate(over="ignore"):
        bits = splitmix64(keys[:, None, None] + (counter + np.uint64(1)) * np.uint64(GOLDEN))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2.0 ** 53)


# ---------------------------------------------------------------------------------------------
# The skeleton of a run


def zero_past(samples: torch.Tensor, lengths: torch.Tensor, hop: int, t0: int = 0) -> torch.Tensor:
    """samples (B, n) of sample indices t0 .. t0 + n - 1, lengths (B,) in frames -> samples with
    every index from lengths[b] * hop on zeroed."""
    n = samples.shape[1]
    keep = (t0 + torch.arange(n, device=samples.device))[None, :] < (lengths.to(samples.device) * hop)[:, None]
    return samples * keep


Temperature = Union[float, torch.Tensor]  # one number, or (B, F): one per frame of each utterance


def frame_temperatures(temperature: Temperature, B: int, frames: int) -> torch.Tensor:
    """A sampling temperature (a positive number, or (B, F) positive per-frame values) -> (B, F)
    float32 on the CPU; ValueError when it is not positive and finite or not of that shape."""
    t = torch.as_tensor(temperature, dtype=torch.float32).detach().cpu()
    if t.dim() == 0:
        t = t.expand(B, frames)
    if t.shape != (B, frames):
        raise ValueError(f"temperature must be a number or ({B}, {frames}) per frame, got {tuple(t.shape)}")
    if t.numel() and not bool(torch.isfinite(t).all() and (t > 0).all()):
        raise ValueError(f"temperature must be positive and finite, got {float(t.min())}")
    return t.contiguous()


class Sampler:
    """One run of autoregressive sampling; the contract is in the module docstring.

    The base class prepares what every backend reads (the frame features replicate-padded by
    CONTEXT_FRAMES, the conditioning projection, the upsampler's phase weights, the LPC
    coefficients) and runs the loop: chunks of ``chunk_frames`` frames up to the longest length,
    the draws and forced values of each chunk, the progress bar, the final mask. A backend sets
    ``chunk_frames`` and implements ``begin`` and ``chunk``.
    """

    chunk_frames: int = 16

    @torch.no_grad()
    def __init__(self, model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *,
                 temperature: Temperature = 1.0, seed: Optional[int] = None, forced: Optional[torch.Tensor] = None,
                 record: bool = False, device: Optional[torch.device] = None):
        self.model, self.record = model, record
        self.device = mel.device if device is None else torch.device(device)  # where ``run`` returns
        self.B, self.frames, self.hop = mel.shape[0], mel.shape[2], model.hop_length
        # (B, F) float32 on the CPU: the temperature of each frame's samples (a backend moves it).
        self.temperatures = frame_temperatures(temperature, self.B, self.frames)
        self.lengths = torch.as_tensor(lengths).long().cpu()
        self.keys = stream_keys(seed, self.B)
        self.forced = None if forced is None else torch.as_tensor(forced).to(self.device).float()
        # (B, n_mels, F + 2 * CONTEXT_FRAMES), on mel's device; a backend may reorder or pad its rows.
        self.padded = model.prepare_conditioning(mel, self.lengths.to(mel.device))
        self.cond_weight = model.cond_weights()[0].detach()  # (L * G, n_mels)
        self.phase = model.upsampler.phase_weights().float()  # (hop, 2 * CONTEXT_FRAMES + 1)
        # LPC: per-frame coefficients (B, F, order), each held for its frame's hop samples.
        self.coeffs = model.lpc_coefficients(mel) if model.lpc is not None else None

    def projected(self, f0: int, f1: int) -> torch.Tensor:
        """Every layer's projected conditioning of frames f0 - CONTEXT_FRAMES .. f1 + CONTEXT_FRAMES - 1
        (the context of frames f0 .. f1 - 1), from ``padded``'s rows: (rows, f1 - f0 + 4, L, G) float32."""
        return self.model.project_frames(self.padded[:, :, f0: f1 + 2 * CONTEXT_FRAMES], self.cond_weight)

    def begin(self) -> None:
        """Reset the incremental state (queues, previous input, LPC history) for a run from silence."""
        raise NotImplementedError

    def chunk(self, f0: int, f1: int, draws: np.ndarray,
              forced: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Samples f0 * hop .. f1 * hop - 1 of every utterance, carrying the state on.

        draws (B, n, 2) float64 from ``uniforms``; forced (B, n) or None, n = (f1 - f0) * hop.
        -> (samples (B, n) float32, logits (B, n, out_channels) when recording, else None).
        What lies past an utterance's length does not matter (``run`` zeroes it).
        """
        raise NotImplementedError

    @torch.no_grad()
    def run(self, progress: bool = False,
            on_chunk: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """-> (B, frames * hop) float32 on ``device``, zero past each length; with ``record``, every
        step's output in ``logits`` (B, frames * hop, out_channels). ``on_chunk(t0, samples)`` gets
        each chunk as it is made: samples (B, n) of indices t0 .. t0 + n - 1, already zero past each
        length (what ``run`` returns there), chunks in order, the last ending at the longest length."""
        from tqdm import tqdm

        hop, T = self.hop, self.frames * self.hop
        end = int(self.lengths.max()) * hop if self.B else 0
        out = torch.zeros(self.B, T, device=self.device)
        self.logits = torch.zeros(self.B, T, self.model.out_channels, device=self.device) if self.record else None
        self.begin()
        with tqdm(total=end, unit="sample", unit_scale=True, disable=not progress, desc="wavenet") as bar:
            for f0 in range(0, end // hop, self.chunk_frames):
                f1 = min(self.frames, f0 + self.chunk_frames)
                t0, t1 = f0 * hop, f1 * hop
                forced = self.forced[:, t0:t1] if self.forced is not None else None
                samples, logits = self.chunk(f0, f1, uniforms(self.keys, t0, t1 - t0), forced)
                samples = zero_past(samples.to(self.device), self.lengths, hop, t0)
                out[:, t0:t1] = samples
                if on_chunk is not None:
                    on_chunk(t0, samples)
                if self.record:
                    self.logits[:, t0:t1] = logits
                bar.update(min(t1, end) - t0)
        return out


# ---------------------------------------------------------------------------------------------
# The packed-weights view


@dataclass(frozen=True)
class PackedWeights:
    """A WaveNet's sampling weights in the layouts the kernels read, each weight matrix stored
    (inputs, outputs) so ``activations @ weight`` runs over contiguous outputs. float32, detached,
    contiguous, on the model's device; a kernel converts them (numpy, float16) as it needs.

    L layers, K taps, R / G / S residual, gate and skip channels, Q mu-law classes, O out_channels.
    """

    taps: torch.Tensor  # (L, K, R, G): tap k reads the input at t - (K - 1 - k) * d; gate tanh half first
    gate_bias: torch.Tensor  # (L, G): the dilated conv's bias (the conditioning projection has none)
    out: torch.Tensor  # (L, G / 2, R + S): residual then skip, one product
    out_bias: torch.Tensor  # (L, R + S)
    head1: torch.Tensor  # (S, S), applied to relu(skip_scale * sum of skips)
    head1_bias: torch.Tensor  # (S,)
    head2: torch.Tensor  # (S, O)
    head2_bias: torch.Tensor  # (O,)
    skip_scale: float
    dilations: tuple[int, ...]
    embed: Optional[torch.Tensor]  # (Q, R), mu-law: the previous input's class -> first layer's input
    input_weight: Optional[torch.Tensor]  # (R,), mixture: the previous sample's value times this, plus
    input_bias: Optional[torch.Tensor]  # (R,)
    decode: Optional[torch.Tensor]  # (Q,), mu-law: class -> sample value
    pred_embed: Optional[torch.Tensor]  # (Q, R), LPC mu-law: p_t's class
    exc_embed: Optional[torch.Tensor]  # (Q, R), LPC mu-law: e_(t-1)'s class
    lpc_weight: Optional[torch.Tensor]  # (2, R), LPC mixture: [p_t, e_(t-1)] @ this


def pack_weights(model: WaveNet) -> PackedWeights:
    """The model's current weights as a ``PackedWeights`` (a few milliseconds; no copy is kept)."""
    c, blocks = model.config, model.blocks
    mulaw, lpc = c.output == "mulaw", model.lpc is not None

    def f32(t: torch.Tensor) -> torch.Tensor:
        return t.detach().float().contiguous()

    out = torch.stack([b.out.weight[:, :, 0] for b in blocks])  # (L, R + S, G / 2)
    head1, head2 = model.head[1], model.head[3]
    return PackedWeights(
        taps=f32(torch.stack([b.conv.weight.permute(2, 1, 0) for b in blocks])),
        gate_bias=f32(torch.stack([b.conv.bias for b in blocks])),
        out=f32(out.transpose(1, 2)), out_bias=f32(torch.stack([b.out.bias for b in blocks])),
        head1=f32(head1.weight[:, :, 0].T), head1_bias=f32(head1.bias),
        head2=f32(head2.weight[:, :, 0].T), head2_bias=f32(head2.bias),
        skip_scale=float(model.skip_scale), dilations=tuple(int(d) for d in model.dilations),
        embed=f32(model.input.weight) if mulaw else None,
        input_weight=None if mulaw else f32(model.input.weight[:, 0]),
        input_bias=None if mulaw else f32(model.input.bias),
        decode=mulaw_decode(torch.arange(c.mulaw_channels), c.mulaw_channels).to(out.device) if mulaw else None,
        pred_embed=f32(model.input_pred.weight) if lpc and mulaw else None,
        exc_embed=f32(model.input_exc.weight) if lpc and mulaw else None,
        lpc_weight=f32(model.input_lpc.weight.T) if lpc and not mulaw else None)
