"""WaveNet vocoder: causal dilated convolutions with incremental state, gated residual blocks, a
learned conditioning upsampler, mu-law and mixture-of-logistics outputs, and the torch sampler.
What every sampler shares (the contract, the draws, the packed weights) is tts.models.sampling;
the kernels are tts.models.wavenet_fast (Numba, CPU) and tts.models.wavenet_triton (GPU).

Shapes used throughout: audio (B, T) float in [-1, 1]; mel (B, n_mels, F) with T == F * hop_length;
R, G, S = residual, gate and skip channels; L = layers; K = kernel size.

Conditioning. The upsampler is a conv over mel frames followed by one learned transposed conv per
scale. The transposed convs are shared by every mel channel and have no bias, so upsampling is a
linear map along time only, and it commutes with each layer's 1x1 conditioning projection. The
samplers use that: they project the frame features for all layers once per *frame* and then, per
sample, mix a few projected frames with per-phase weights (``ConditioningUpsampler.phase_weights``).
That costs ~3 * L * G multiply-adds per sample instead of L * G * n_mels, and the memory is per
frame: at 20 layers x 128 gate channels a whole 10 s utterance is 866 x 2560 floats (9 MB; the
samplers hold one chunk of it at a time), where per-sample contributions would take 2.3 GB.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tts.config import AudioConfig, WaveNetConfig
from tts.models.lpc import Deemphasis, LPCAnalysis, predict, preemphasis
from tts.models.sampling import (CONTEXT_FRAMES, LOG_SCALE_MIN, Sampler, Temperature, frame_temperatures, mulaw_decode,
                                 mulaw_encode, zero_past)

log = logging.getLogger(__name__)

SQRT_HALF = math.sqrt(0.5)
# Mixture of logistics on 16-bit audio: bins of width 2 / 65535 over [-1, 1].
MOL_CLASSES = 65536
BACKENDS = ("auto", "torch", "fast", "triton")


# ---------------------------------------------------------------------------------------------
# Output distributions


def mol_split(params: torch.Tensor, mixtures: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 3M, ...) -> logit_probs, means, log_scales, each (B, M, ...); log scales clamped."""
    logit_probs, means, log_scales = params.float().split(mixtures, dim=1)
    return logit_probs, means, log_scales.clamp(min=LOG_SCALE_MIN)


def mol_loss(params: torch.Tensor, target: torch.Tensor, *, mixtures: int,
             num_classes: int = MOL_CLASSES) -> torch.Tensor:
    """Discretized mixture-of-logistics negative log-likelihood (PixelCNN++, Salimans et al. 2017).

    params: (B, 3M, T) as [logit_probs, means, log_scales]; target: (B, T) in [-1, 1]. Returns the
    mean NLL per sample in nats (a scalar; it can go below zero only through the edge bins' mass).
    """
    logit_probs, means, log_scales = mol_split(params, mixtures)
    y = target.float().unsqueeze(1)  # (B, 1, T)
    half_bin = 1.0 / (num_classes - 1)
    centered = y - means
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centered + half_bin)
    min_in = inv_scale * (centered - half_bin)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)  # log P(x <= bottom bin's upper edge)
    log_one_minus_cdf_min = -F.softplus(min_in)  # log P(x >= top bin's lower edge)
    mid_in = inv_scale * centered
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    # Where the bin mass underflows, use the density at the bin centre times the bin width.
    log_bin = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)),
                          log_pdf_mid - math.log((num_classes - 1) / 2))
    edge = 1.0 - half_bin
    log_probs = torch.where(y < -edge, log_cdf_plus, torch.where(y > edge, log_one_minus_cdf_min, log_bin))
    log_probs = log_probs + F.log_softmax(logit_probs, dim=1)
    return -torch.logsumexp(log_probs, dim=1).mean()


def mol_sample(params: torch.Tensor, uniforms: torch.Tensor, *, mixtures: int,
               temperature: Temperature = 1.0) -> torch.Tensor:
    """Draw one sample per row: params (B, 3M), uniforms (B, 2) in (0, 1) -> (B,) in [-1, 1].

    The first uniform picks a component by inverse CDF, the second draws from its logistic; the
    temperature (a number or (B,) per row) scales the logistic's scale (the component weights are
    left as they are).
    """
    logit_probs, means, log_scales = mol_split(params, mixtures)
    cdf = torch.softmax(logit_probs, dim=1).cumsum(dim=1)
    k = torch.searchsorted(cdf, (uniforms[:, :1] * cdf[:, -1:]).to(cdf.dtype)).clamp(max=mixtures - 1)
    mu, log_s = means.gather(1, k).squeeze(1), log_scales.gather(1, k).squeeze(1)
    u = uniforms[:, 1].to(mu.dtype)
    x = mu + torch.exp(log_s) * temperature * (torch.log(u) - torch.log1p(-u))
    return x.clamp(-1.0, 1.0)


def mulaw_sample(logits: torch.Tensor, uniforms: torch.Tensor, *, temperature: Temperature = 1.0) -> torch.Tensor:
    """Inverse-CDF draw from softmax(logits / temperature): logits (B, Q), uniforms (B,), temperature
    a number or (B,) per row -> (B,) int64."""
    if isinstance(temperature, torch.Tensor):
        temperature = temperature.reshape(-1, 1)
    cdf = torch.softmax(logits.float() / temperature, dim=1).cumsum(dim=1)
    k = torch.searchsorted(cdf, (uniforms[:, None] * cdf[:, -1:]).to(cdf.dtype))
    return k.squeeze(1).clamp(max=logits.shape[1] - 1)


# ---------------------------------------------------------------------------------------------
# Layers


class CausalConv1d(nn.Conv1d):
    """Dilated convolution over the past only: (B, C_in, T) -> (B, C_out, T); output t sees inputs
    t - (K - 1) * dilation, ..., t - dilation, t (zeros before the start).

    Incremental use (Fast WaveNet's queues): ``init_state`` makes a ring buffer holding the last
    (K - 1) * dilation inputs, ``step`` computes one output from it and pushes the new input.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left_pad = (kernel_size - 1) * dilation
        # How far back taps 0 .. K - 2 look, for ``step``.
        self.register_buffer("lags", torch.arange(kernel_size - 1, 0, -1) * dilation, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left_pad, 0)))

    def init_state(self, batch: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Zero ring buffer (B, C_in, (K - 1) * dilation): the inputs before the start."""
        return torch.zeros(batch, self.in_channels, max(self.left_pad, 1), device=device, dtype=dtype)

    def step(self, x: torch.Tensor, state: torch.Tensor, t) -> torch.Tensor:
        """x: (B, C_in), the input at time t (an int, or a 0-dim int64 tensor on x's device so the
        step can be captured in a CUDA graph); state: from ``init_state``, updated in place.
        Returns the output at time t, (B, C_out)."""
        if self.kernel_size[0] == 1:
            return F.linear(x, self.weight[:, :, 0], self.bias)
        size = state.shape[2]
        # Tap k reads the input at t - lags[k]; ring slot (t - lag) % size holds it.
        past = state.index_select(2, (t - self.lags) % size)  # (B, C_in, K - 1)
        cols = torch.cat([past, x.unsqueeze(2)], dim=2)  # (B, C_in, K): the weight's layout
        out = F.linear(cols.flatten(1), self.weight.flatten(1), self.bias)
        state.index_copy_(2, (torch.as_tensor(t, device=x.device) % size).reshape(1), x.unsqueeze(2))
        return out


def gated(g: torch.Tensor) -> torch.Tensor:
    """(B, G, ...) -> tanh(first half) * sigmoid(second half), (B, G / 2, ...)."""
    a, b = g.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class ResidualBlock(nn.Module):
    """One gated residual layer with local conditioning.

    forward(x (B, T, R), c (B, T, G)) -> (x_next (B, T, R), skip (B, T, S)), time-major, with c
    this layer's conditioning already projected (``WaveNet.conditioning``):
    g = causal_conv(x) + c; h = tanh(g_a) * sigmoid(g_b); [res, skip] = out(h);
    x_next = (x + res) * sqrt(1/2). The residual and skip 1x1 convs are one conv (``out``).

    The weights keep Conv1d layouts (the state dict, the samplers and the shipped voices read
    them), but the teacher-forced pass is matrix products on (B, T, C): all K taps of the dilated
    conv are one product whose K outputs are shifted in time and summed, which oneDNN's bf16
    conv1d on (B, C, T) was several times slower at, and which lets torch.compile fuse the shifts,
    the bias and the gate into one kernel.
    """

    def __init__(self, *, residual_channels: int, gate_channels: int, skip_channels: int, cond_channels: int,
                 kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.residual_channels, self.skip_channels, self.dropout = residual_channels, skip_channels, dropout
        self.conv = CausalConv1d(residual_channels, gate_channels, kernel_size, dilation=dilation)
        # No bias: the conv's bias already shifts the gate, and the samplers fold it in once.
        self.cond = nn.Conv1d(cond_channels, gate_channels, 1, bias=False)
        self.out = nn.Conv1d(gate_channels // 2, residual_channels + skip_channels, 1)

    def gate(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, T, R), c (B, T, G) -> the gated activations h (B, T, G / 2)."""
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        K, T = self.conv.kernel_size[0], x.shape[1]
        d = self.conv.dilation[0]
        # Tap k of the conv reads x[t - (K - 1 - k) * d]: x shifted by that lag, times W_k^T. (One
        # product per tap: splitting one product of all taps costs a concatenation in backward.)
        w = self.conv.weight
        g = c + F.linear(x, w[:, :, K - 1], self.conv.bias)
        for k in range(K - 1):
            lag = (K - 1 - k) * d
            g = g + F.linear(F.pad(x, (0, 0, lag, 0))[:, :T], w[:, :, k])
        return gated(g.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.gate(x, c)
        R, w, b = self.residual_channels, self.out.weight[:, :, 0], self.out.bias
        res, skip = F.linear(h, w[:R], b[:R]), F.linear(h, w[R:], b[R:])
        return (x + res) * SQRT_HALF, skip

    def step(self, x: torch.Tensor, cond: torch.Tensor, state: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: x (B, R), cond (B, G) this layer's projected conditioning at t ->
        (x_next (B, R), skip (B, S)). ``state`` is the conv's ring buffer."""
        h = gated(self.conv.step(x, state, t) + cond)
        res, skip = F.linear(h, self.out.weight[:, :, 0], self.out.bias).split(
            [self.residual_channels, self.skip_channels], dim=1)
        return (x + res) * SQRT_HALF, skip


def _triangle(scale: int) -> torch.Tensor:
    """Transposed-conv kernel (2 * scale,) that makes a stage linear interpolation between frame
    centres (with the crop in ``ConditioningUpsampler.upsample``); pairs j, j + scale sum to 1."""
    j = torch.arange(2 * scale, dtype=torch.float32)
    return (1.0 - (j - scale // 2 - (scale - 1) / 2).abs() / scale).clamp(min=0.0)


class ConditioningUpsampler(nn.Module):
    """Mel frames -> per-sample conditioning: mel (B, C, F) -> (B, C, F * prod(scales)).

    A conv over mel frames (kernel ``kernel_size``, replicate padding) mixes channels and
    neighbouring frames; then one transposed conv per scale (kernel 2 * scale, stride scale)
    upsamples along time. The transposed convs are shared by all channels and have no bias, so
    the upsampling is linear and commutes with any channel projection; they start as linear
    interpolation. Frames are replicate-padded by CONTEXT_FRAMES before upsampling, so the
    output for frame f depends only on frames f - 2 .. f + 2.
    """

    def __init__(self, channels: int, scales: Sequence[int], *, kernel_size: int):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"cond_kernel_size must be odd and positive, got {kernel_size}")
        self.scales = tuple(int(s) for s in scales)
        self.hop = math.prod(self.scales)
        self.pre = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2, padding_mode="replicate")
        nn.init.dirac_(self.pre.weight)
        nn.init.zeros_(self.pre.bias)
        self.stages = nn.ModuleList()
        for s in self.scales:
            stage = nn.ConvTranspose1d(1, 1, 2 * s, stride=s, bias=False)
            with torch.no_grad():
                stage.weight.copy_(_triangle(s).view(1, 1, -1))
            self.stages.append(stage)

    def frame_features(self, mel: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """mel (B, C, F) -> (B, C, F) after the frame conv. With ``lengths`` (B,) in frames, each
        utterance's frames past its end repeat its last frame, before and after the conv, so an
        utterance is conditioned the same way alone or padded in a batch."""
        if lengths is None:
            return self.pre(mel)
        index = torch.minimum(torch.arange(mel.shape[2], device=mel.device)[None, :],
                              (lengths.to(mel.device).long() - 1).clamp(min=0)[:, None])
        index = index[:, None, :].expand(-1, mel.shape[1], -1)
        return self.pre(mel.gather(2, index)).gather(2, index)

    def upsample(self, feats: torch.Tensor) -> torch.Tensor:
        """Frame-rate features (B, C', F), any number of channels C' -> (B, C', F * hop)."""
        B, C, Fr = feats.shape
        J = CONTEXT_FRAMES
        x = F.pad(feats.reshape(B * C, 1, Fr), (J, J), mode="replicate")
        for stage, s in zip(self.stages, self.scales):
            n = x.shape[2]
            x = stage(x)[:, :, s // 2: s // 2 + n * s]
        return x[:, :, J * self.hop: (J + Fr) * self.hop].reshape(B, C, Fr * self.hop)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.frame_features(mel))

    def phase_weights(self) -> torch.Tensor:
        """(hop, 2 * CONTEXT_FRAMES + 1): sample p of frame f of the upsampled output is
        sum_j w[p, j] * frame_feature[f + j - CONTEXT_FRAMES] (frames replicate-padded).
        Read off the stages' impulse responses."""
        J = CONTEXT_FRAMES
        n = 2 * J + 1
        x = torch.eye(n, device=self.stages[0].weight.device).unsqueeze(1)  # impulse at frame j
        for stage, s in zip(self.stages, self.scales):
            m = x.shape[2]
            x = stage(x)[:, :, s // 2: s // 2 + m * s]
        return x[:, 0, J * self.hop: (J + 1) * self.hop].T.contiguous()


# ---------------------------------------------------------------------------------------------
# The model


class WaveNet(nn.Module):
    """Autoregressive WaveNet vocoder conditioned on mel frames.

    ``WaveNet(config, n_mels=audio.n_mels, hop_length=audio.hop_length)``; prod(upsample_scales)
    must equal hop_length. Output "mulaw": 256-way softmax over mu-law classes (the input is the
    previous sample's class, embedded); "mol": a mixture of ``mixtures`` discretized logistics on
    16-bit audio (the input is the previous sample's value).
    """

    def __init__(self, config: WaveNetConfig, *, n_mels: int, hop_length: int, audio: Optional[AudioConfig] = None):
        super().__init__()
        c = config
        scales = tuple(int(s) for s in c.upsample_scales)
        if math.prod(scales) != hop_length:
            raise ValueError(f"prod(upsample_scales) must equal hop_length: prod({list(scales)}) = "
                             f"{math.prod(scales)}, hop_length = {hop_length}")
        if c.gate_channels % 2:
            raise ValueError(f"gate_channels must be even (tanh and sigmoid halves), got {c.gate_channels}")
        if c.kernel_size < 2:
            raise ValueError(f"kernel_size must be at least 2, got {c.kernel_size}")
        if c.layers % c.stacks:
            raise ValueError(f"layers ({c.layers}) must be a multiple of stacks ({c.stacks})")
        self.config, self.n_mels, self.hop_length = c, n_mels, hop_length
        self.mixtures = c.mixtures
        self.out_channels = c.mulaw_channels if c.output == "mulaw" else 3 * c.mixtures
        per_stack = c.layers // c.stacks
        self.dilations = [2 ** (i % per_stack) for i in range(c.layers)]

        self.upsampler = ConditioningUpsampler(n_mels, scales, kernel_size=c.cond_kernel_size)
        if c.output == "mulaw":
            self.input = nn.Embedding(c.mulaw_channels, c.residual_channels)
        else:
            self.input = nn.Linear(1, c.residual_channels)
        self.lpc: Optional[LPCAnalysis] = None
        if c.excitation == "lpc":
            if audio is None:
                raise ValueError("an excitation (LPC) WaveNet needs the audio config to invert its mels: "
                                 "WaveNet(config, n_mels=..., hop_length=..., audio=audio)")
            if (audio.n_mels, audio.hop_length) != (n_mels, hop_length):
                raise ValueError(f"audio has n_mels={audio.n_mels}, hop_length={audio.hop_length}; the WaveNet "
                                 f"was given n_mels={n_mels}, hop_length={hop_length}")
            self.lpc = LPCAnalysis(audio, order=c.lpc_order, alpha=c.preemphasis)
            # The prediction p_t and the last excitation e_(t-1), beside the previous sample s'_(t-1).
            # New modules only: a plain WaveNet's state dict is unchanged.
            if c.output == "mulaw":
                self.input_pred = nn.Embedding(c.mulaw_channels, c.residual_channels)
                self.input_exc = nn.Embedding(c.mulaw_channels, c.residual_channels)
            else:
                self.input_lpc = nn.Linear(2, c.residual_channels, bias=False)
        self.blocks = nn.ModuleList(
            ResidualBlock(residual_channels=c.residual_channels, gate_channels=c.gate_channels,
                          skip_channels=c.skip_channels, cond_channels=n_mels, kernel_size=c.kernel_size,
                          dilation=d, dropout=c.dropout)
            for d in self.dilations)
        # Sum of L skips scaled by 1/sqrt(L) keeps the head's input at unit scale.
        self.skip_scale = 1.0 / math.sqrt(c.layers)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c.skip_channels, c.skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(c.skip_channels, self.out_channels, 1))

    def conditioning_parameters(self) -> list[nn.Parameter]:
        """The mel path's weights: the upsampler and each layer's conditioning projection."""
        return [*self.upsampler.parameters(), *(p for block in self.blocks for p in block.cond.parameters())]

    @property
    def receptive_field(self) -> int:
        """Samples of past input that one output depends on (including the current input)."""
        return (self.config.kernel_size - 1) * sum(self.dilations) + 1

    @property
    def initial_input(self) -> float:
        """The input value fed before the first sample: silence (its mu-law class for a plain
        "mulaw" model; an LPC model is fed sample values and encodes them itself)."""
        if self.config.output == "mulaw" and self.lpc is None:
            # mulaw_encode(0) in plain Python: a tensor here would break the compiled training graph.
            return float(int((self.config.mulaw_channels - 1) / 2 + 0.5))
        return 0.0

    def _embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Input values (B, T) (mu-law classes as floats, or samples) -> (B, R, T)."""
        if self.config.output == "mulaw":
            return self.input(inputs.long()).transpose(1, 2)
        return self.input(inputs.unsqueeze(-1).to(self.input.weight.dtype)).transpose(1, 2)

    def _embed_lpc(self, prev: torch.Tensor, pred: torch.Tensor, exc: torch.Tensor) -> torch.Tensor:
        """LPC inputs, sample values (B, T) each: s'_(t-1), p_t, e_(t-1) -> (B, R, T)."""
        if self.config.output == "mulaw":
            Q = self.config.mulaw_channels
            x = (self.input(mulaw_encode(prev, Q)) + self.input_pred(mulaw_encode(pred, Q))
                 + self.input_exc(mulaw_encode(exc, Q)))
            return x.transpose(1, 2)
        dtype = self.input.weight.dtype
        x = self.input(prev.unsqueeze(-1).to(dtype)) + self.input_lpc(torch.stack([pred, exc], -1).to(dtype))
        return x.transpose(1, 2)

    def feedback(self, audio: torch.Tensor) -> torch.Tensor:
        """The value a sampler feeds back after each step, for teacher-forced checks: audio (B, T) ->
        (B, T) mu-law classes as floats (plain "mulaw"), samples (plain "mol"), or pre-emphasised
        samples (LPC)."""
        if self.lpc is not None:
            return self.preemphasized(audio)
        if self.config.output == "mulaw":
            return mulaw_encode(audio, self.config.mulaw_channels).float()
        return audio.float()

    def inputs_from_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing inputs of a plain WaveNet: audio (B, T) -> the previous sample's input
        value at each t, (B, T)."""
        values = audio.float()
        if self.config.output == "mulaw":
            values = mulaw_encode(values, self.config.mulaw_channels).float()
        first = torch.full_like(values[:, :1], self.initial_input)
        return torch.cat([first, values[:, :-1]], dim=1)

    def preemphasized(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, T) -> s' (B, T), pre-emphasised and clipped to [-1, 1] (the samplers clip the same way)."""
        return preemphasis(audio.float(), self.config.preemphasis).clamp(-1.0, 1.0)

    def lpc_coefficients(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, F) -> per-frame LPC coefficients a (B, F, order), float32."""
        return self.lpc(mel.float())

    def _noisy(self, s: torch.Tensor) -> torch.Tensor:
        """s (B, T) plus uniform noise of +-noise_injection mu-law steps (in the mu-law domain, so
        quiet stretches get quiet noise), clipped to [-1, 1]."""
        mu = float(self.config.mulaw_channels - 1)
        y = torch.sign(s) * torch.log1p(mu * s.abs()) / math.log1p(mu)
        y = y + (torch.rand_like(y) * 2.0 - 1.0) * self.config.noise_injection * 2.0 / mu
        return (torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu).clamp(-1.0, 1.0)

    def _lpc_inputs(self, audio: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio (B, T), mel (B, n_mels, F) -> (embedded inputs (B, R, T), excitation target (B, T))."""
        s = self.preemphasized(audio)
        coeffs = self.lpc_coefficients(mel)
        history = self._noisy(s) if self.training and self.config.noise_injection > 0 else s
        pred = predict(history, coeffs, self.hop_length)
        shift = lambda x: F.pad(x, (1, 0))[:, :-1]  # noqa: E731  the value at t - 1 (0 before the start)
        x = self._embed_lpc(shift(history), pred, shift(history - pred))
        return x, s - pred

    def forward(self, audio: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: audio (B, T) in [-1, 1], mel (B, n_mels, F) with T == F * hop ->
        logits (B, mulaw_channels, T) or mixture parameters (B, 3 * mixtures, T), where output t
        predicts audio[:, t] from audio[:, :t] (the input is shifted by one)."""
        if audio.shape[1] != mel.shape[2] * self.hop_length:
            raise ValueError(f"audio has {audio.shape[1]} samples but mel has {mel.shape[2]} frames "
                             f"x hop {self.hop_length} = {mel.shape[2] * self.hop_length}")
        c = self.conditioning(mel)
        if self.lpc is not None:
            x, target = self._lpc_inputs(audio, mel)
        else:
            x = self._embed(self.inputs_from_audio(audio))
        x = x.transpose(1, 2)  # time-major (B, T, R): the embeddings' own layout, so no copy
        skips = 0.0
        for block, c_layer in zip(self.blocks, c):
            x, skip = block(x, c_layer)
            skips = skips + skip
        h = skips * self.skip_scale
        for module in self.head:
            h = F.linear(h, module.weight[:, :, 0], module.bias) if isinstance(module, nn.Conv1d) else module(h)
        out = h.transpose(1, 2)  # (B, out_channels, T), a view of the time-major result
        if self.lpc is not None:
            # The target excitation travels with the output (float32), so ``nll(output, audio)``
            # needs no mel and the training system stays the same for both kinds of WaveNet.
            return torch.cat([out.float(), target[:, None]], dim=1)
        return out

    def conditioning(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """mel (B, n_mels, F) -> each layer's projected conditioning, L tensors (B, F * hop, G),
        time-major (no gate bias).

        The same function as each layer's 1x1 conv on ``upsampler(mel)``, computed the way the
        samplers do (see the module docstring): all layers' projections as one product on the
        frames, then each sample mixes 2 * CONTEXT_FRAMES + 1 projected frames with its phase's
        weights. That is a few multiply-adds per sample and output channel instead of n_mels, and
        no upsampled mel. The layers come out of one tensor with the layer first, so the backward
        pass stacks their gradients once rather than scattering each into a zero-filled whole.
        """
        B, _, Fr = mel.shape
        L, n = len(self.blocks), 2 * CONTEXT_FRAMES + 1
        padded = self.prepare_conditioning(mel, None)
        weight = self.cond_weights()[0].view(L, -1, self.n_mels)  # (L, G, n_mels)
        projected = torch.matmul(weight[:, None], padded[None])  # (L, B, G, F + 4)
        windows = projected.unfold(3, n, 1).permute(0, 1, 3, 4, 2).reshape(-1, n, projected.shape[2])
        # (L * B * F, n, G): frame f's context. One batched product with the phase weights
        # (hop, n) writes (L, B, F, hop, G) in place, time-major per layer, with no transposing copy.
        mixed = torch.bmm(self.upsampler.phase_weights().expand(windows.shape[0], -1, -1), windows)
        return mixed.reshape(L, B, Fr * self.hop_length, -1).unbind(0)

    def distribution(self, output: torch.Tensor) -> torch.Tensor:
        """``forward``'s output -> the distribution parameters alone (B, out_channels, T): an LPC
        model's output carries its excitation target as one extra last channel."""
        return output[:, :-1] if self.lpc is not None else output

    def loss(self, audio: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per sample (nats) of audio (B, T) given mel (B, n_mels, F)."""
        return self.nll(self(audio, mel), audio)

    def nll(self, output: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Mean NLL of audio (B, T) under ``forward``'s output (for an LPC model: of the excitation
        e_t = s'_t - p_t, the target carried in the output's last channel)."""
        if self.lpc is not None:
            output, audio = output[:, :-1], output[:, -1].clamp(-1.0, 1.0)
        if self.config.output == "mulaw":
            # As rows (B * T, classes): ``forward``'s output is a view of exactly that layout.
            logits = output.transpose(1, 2).reshape(-1, output.shape[1]).float()
            return F.cross_entropy(logits, mulaw_encode(audio, self.config.mulaw_channels).reshape(-1))
        return mol_loss(output, audio, mixtures=self.mixtures)

    # -- sampling ------------------------------------------------------------------------------

    def cond_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All layers' conditioning projections (L * G, n_mels) and gate biases (L, G)."""
        weight = torch.cat([b.cond.weight[:, :, 0] for b in self.blocks], dim=0)
        bias = torch.stack([b.conv.bias for b in self.blocks], dim=0)
        return weight, bias

    def project_frames(self, padded: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Replicate-padded frame features (B, n_mels, F') -> every layer's projected
        conditioning (B, F', L, G), float32 (no bias)."""
        B, _, Fp = padded.shape
        out = torch.einsum("kc,bcf->bfk", weight.float(), padded.float())
        return out.reshape(B, Fp, len(self.blocks), -1).contiguous()

    def prepare_conditioning(self, mel: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
        """mel (B, n_mels, F) -> frame features replicate-padded by CONTEXT_FRAMES, (B, n_mels, F + 4)."""
        feats = self.upsampler.frame_features(mel.float(), lengths)
        return F.pad(feats, (CONTEXT_FRAMES, CONTEXT_FRAMES), mode="replicate")

    @torch.no_grad()
    def generate(self, mel: torch.Tensor, lengths: Optional[torch.Tensor] = None, *, temperature: Temperature = 1.0,
                 seed: Optional[int] = None, backend: str = "auto", progress: bool = False,
                 on_chunk: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
        """Sample audio: mel (B, n_mels, F), lengths (B,) in frames (None: all F) -> (B, F * hop)
        float32 on mel's device; samples past each utterance's lengths * hop are zero.
        ``on_chunk(t0, audio)`` receives the finished waveforms chunk by chunk as they are sampled:
        audio (B, n) of sample indices t0 .. t0 + n - 1, the same values the returned tensor holds there.

        backend "fast": the Numba CPU kernel (tts.models.wavenet_fast); "torch": cached incremental
        generation with torch ops (any device; CUDA-graph captured on CUDA); "triton": the persistent
        GPU kernel (tts.models.wavenet_triton; CUDA only, mu-law models with kernel size 2); "auto":
        fast for CPU tensors, torch otherwise. The same seed gives the same random draws on every backend.
        ``temperature``: one number, or (B, F) per frame (held for the frame's samples).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, frames), got {tuple(mel.shape)}")
        B, _, frames = mel.shape
        temperature = frame_temperatures(temperature, B, frames)
        if lengths is None:
            lengths = torch.full((B,), frames, dtype=torch.long)
        lengths = torch.as_tensor(lengths).long().cpu()
        if lengths.shape != (B,) or bool((lengths < 0).any()) or bool((lengths > frames).any()):
            raise ValueError(f"lengths must be (B,) = ({B},) frame counts in [0, {frames}], got {lengths.tolist()}")
        if frames == 0 or B == 0:
            return torch.zeros(B, frames * self.hop_length, device=mel.device)
        if backend == "auto":
            backend = "fast" if mel.device.type == "cpu" else "torch"
        sampler = sampler_class(backend)(self, mel, lengths, temperature=temperature, seed=seed)
        out = torch.zeros(B, frames * self.hop_length, device=mel.device)
        finish = self.finisher(lengths)

        def chunk(t0: int, samples: torch.Tensor) -> None:
            audio = finish(t0, samples.to(mel.device))
            out[:, t0: t0 + audio.shape[1]] = audio
            if on_chunk is not None:
                on_chunk(t0, audio)

        sampler.run(progress=progress, on_chunk=chunk)
        return out

    def finish(self, samples: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """A sampler's output (B, T) -> waveforms (B, T): de-emphasised and clipped to [-1, 1] for
        an LPC model (the samplers produce s'), zero past each utterance's lengths * hop (again:
        de-emphasis rings on past the end)."""
        return self.finisher(lengths)(0, samples)

    def finisher(self, lengths: torch.Tensor) -> Callable[[int, torch.Tensor], torch.Tensor]:
        """``finish`` over consecutive chunks: ``f(t0, samples (B, n))`` for t0 = 0, n0, n0 + n1, ...
        gives what ``finish`` gives on the whole signal at those indices (the de-emphasis filter's
        state is carried from chunk to chunk)."""
        filtered = Deemphasis(self.config.preemphasis) if self.lpc is not None else None

        def finish(t0: int, samples: torch.Tensor) -> torch.Tensor:
            if filtered is not None:
                samples = filtered(samples).clamp(-1.0, 1.0)
            return zero_past(samples, lengths, self.hop_length, t0)

        return finish


def sampler_class(backend: str) -> type[Sampler]:
    """The sampler of a backend ("torch", "fast" or "triton"; see ``WaveNet.generate``). The kernel
    modules are imported here, on first use: Numba and Triton are slow to import, and they do not
    import this module (tts.models.sampling holds what they share with it)."""
    if backend == "fast":
        from tts.models.wavenet_fast import FastSampler

        return FastSampler
    if backend == "triton":
        from tts.models.wavenet_triton import TritonSampler

        return TritonSampler
    if backend == "torch":
        return TorchSampler
    raise ValueError(f"backend must be one of {', '.join(BACKENDS[1:])}, got {backend!r}")


class TorchSampler(Sampler):
    """Cached incremental generation with torch ops (Fast WaveNet, Paine et al. 2016): each layer
    keeps a queue of its past inputs, so a sample costs O(layers) work. The conditioning is
    projected once per frame for all layers (``WaveNet.project_frames``) and mixed per sample with
    the upsampler's phase weights. On CUDA one step is captured as a CUDA graph and replayed.
    The reference implementation: it steps the modules themselves (``ResidualBlock.step``), not
    the packed weights the kernels read. ``forced`` and ``record``: see tts.models.sampling.
    """

    def __init__(self, model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *, temperature: Temperature = 1.0,
                 seed: Optional[int] = None, forced: Optional[torch.Tensor] = None, record: bool = False,
                 chunk_frames: int = 16, cuda_graph: Optional[bool] = None):
        super().__init__(model, mel, lengths, temperature=temperature, seed=seed, forced=forced, record=record)
        self.chunk_frames = chunk_frames
        self.cuda_graph = (self.device.type == "cuda") if cuda_graph is None else cuda_graph
        classes = model.config.mulaw_channels
        self.decode = mulaw_decode(torch.arange(classes), classes).to(self.device)  # class -> sample
        self.temperatures = self.temperatures.to(self.device)
        if self.coeffs is not None:
            self.coeffs = self.coeffs.to(self.device)

    def begin(self) -> None:
        # Static buffers: a step reads and writes only these, so it can be captured once and replayed.
        m, B, hop, dev = self.model, self.B, self.hop, self.device
        n_ctx = 2 * CONTEXT_FRAMES + 1
        self.states = [blk.conv.init_state(B, device=dev, dtype=torch.float32) for blk in m.blocks]
        self.prev = torch.full((B,), m.initial_input, device=dev)
        if self.coeffs is not None:  # LPC: the last ``order`` values of s' (a ring) and the last excitation
            order = self.coeffs.shape[2]
            self.history = torch.zeros(B, order, device=dev)
            self.exc = torch.zeros(B, device=dev)
            self.lags = torch.arange(1, order + 1, device=dev)
        self.t = torch.zeros((), dtype=torch.long, device=dev)  # step within the chunk
        self.t_abs = torch.zeros((), dtype=torch.long, device=dev)
        self.P = torch.zeros(B, self.chunk_frames + n_ctx - 1, len(m.blocks), m.config.gate_channels, device=dev)
        self.U = torch.zeros(B, self.chunk_frames * hop, 2, dtype=torch.float64, device=dev)
        self.F = torch.zeros(B, self.chunk_frames * hop, device=dev)
        self.out_chunk = torch.zeros(B, self.chunk_frames * hop, device=dev)
        self.logit_chunk = torch.zeros(B, self.chunk_frames * hop, m.out_channels, device=dev) if self.record else None
        self.ctx = torch.arange(n_ctx, device=dev)
        self.step = self._graph_step() if self.cuda_graph else self._step

    def chunk(self, f0, f1, draws, forced):
        n = (f1 - f0) * self.hop
        self.P[:, : f1 - f0 + 2 * CONTEXT_FRAMES] = self.projected(f0, f1)
        self.U[:, :n] = torch.from_numpy(draws).to(self.device)
        if forced is not None:
            self.F[:, :n] = forced
        self.t.zero_()
        self.t_abs.fill_(f0 * self.hop)
        for _ in range(n):
            self.step()
        return self.out_chunk[:, :n], (self.logit_chunk[:, :n] if self.record else None)

    def _step(self) -> None:
        m, t = self.model, self.t
        # Conditioning at this sample: the phase's weights over the frames around it.
        frame, phase = torch.div(t, self.hop, rounding_mode="floor"), t % self.hop
        around = self.P.index_select(1, frame + self.ctx)  # (B, 2J + 1, L, G)
        # (The gate bias is the conv's, added in its step.)
        cond = torch.einsum("j,bjlg->blg", self.phase.index_select(0, phase.reshape(1))[0], around)
        if self.coeffs is not None:
            order = self.coeffs.shape[2]
            a = self.coeffs.index_select(1, torch.div(self.t_abs, self.hop, rounding_mode="floor").reshape(1))[:, 0]
            past = self.history.index_select(1, (self.t_abs - self.lags) % order)  # s'_(t-k), k = 1 .. order
            pred = -(a * past).sum(1).clamp(-1.0, 1.0)
            x = m._embed_lpc(self.prev[:, None], pred[:, None], self.exc[:, None])[:, :, 0]
        else:
            x = m._embed(self.prev[:, None])[:, :, 0]
        skips = 0.0
        for layer, (block, state) in enumerate(zip(m.blocks, self.states)):
            x, skip = block.step(x, cond[:, layer], state, self.t_abs)
            skips = skips + skip
        h = skips * m.skip_scale
        for module in m.head:
            h = F.linear(h, module.weight[:, :, 0], module.bias) if isinstance(module, nn.Conv1d) else module(h)
        u = self.U.index_select(1, t.reshape(1))[:, 0]  # (B, 2)
        temperature = self.temperatures.index_select(
            1, torch.div(self.t_abs, self.hop, rounding_mode="floor").reshape(1))[:, 0]  # (B,)
        if m.config.output == "mulaw":
            k = mulaw_sample(h, u[:, 0], temperature=temperature)
            value, nxt = self.decode.index_select(0, k), k.float()
        else:
            value = mol_sample(h, u, mixtures=m.mixtures, temperature=temperature)
            nxt = value
        if self.coeffs is not None:  # the draw is the excitation: s'_t = p_t + e_t
            value = (pred + value.float()).clamp(-1.0, 1.0)
            nxt = value
        if self.forced is not None:
            nxt = self.F.index_select(1, t.reshape(1))[:, 0]
        if self.coeffs is not None:
            self.exc.copy_(nxt - pred)
            self.history.index_copy_(1, (self.t_abs % self.coeffs.shape[2]).reshape(1), nxt[:, None])
        self.out_chunk.index_copy_(1, t.reshape(1), value[:, None].float())
        if self.record:
            self.logit_chunk.index_copy_(1, t.reshape(1), h[:, None].float())
        self.prev.copy_(nxt)
        self.t.add_(1)
        self.t_abs.add_(1)

    def _graph_step(self):
        """Capture one step as a CUDA graph (falls back to eager steps if capture fails)."""
        try:
            lpc_state = [self.history, self.exc] if self.coeffs is not None else []
            saved = ([s.clone() for s in self.states + lpc_state], self.prev.clone(), self.t.clone(),
                     self.t_abs.clone())
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm up kernels and allocator outside the capture
                    self._step()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._step()
            for s, v in zip(self.states + lpc_state, saved[0]):
                s.copy_(v)
            self.prev.copy_(saved[1]); self.t.copy_(saved[2]); self.t_abs.copy_(saved[3])  # noqa: E702
            return graph.replay
        except RuntimeError as err:  # capture is an optimisation; eager steps give the same result
            log.warning("CUDA graph capture failed (%s); generating with eager steps", str(err).splitlines()[0])
            return self._step
