"""A persistent Triton kernel for WaveNet sampling on the GPU (``WaveNet.generate(backend="triton")``).

The torch sampler launches a few hundred small kernels per audio sample, so even replayed from a
CUDA graph it is bound by kernel latency, not arithmetic. Here one kernel launch generates a whole
chunk of samples: each program owns BLOCK_B utterances and runs the autoregressive loop itself,
every layer of every step, keeping the current activations in registers, each layer's past inputs
(the dilated convolution's queue) in a small ring buffer in global memory, and reading the weights
(1 MB in fp16 at the 20-layer, 64-channel size) from L2 each step, as NVIDIA's nv-wavenet does with
hand-written CUDA. The conditioning for the chunk is mixed per sample beforehand with batched
matrix products (``WaveNet.project_frames`` and the upsampler's phase weights), and the random
draws are the same counter-based ones as the other samplers (``wavenet.uniforms``).

Supported: mu-law output, plain or LPC excitation (``vocoder.excitation=lpc``: the kernel makes
the prediction p_t from the frame's coefficients and its own ring of past s' values, feeds
s'_(t-1), p_t and e_(t-1) through their embeddings, and the draw is the excitation, as the other
samplers do), kernel size 2, and residual, gate / 2, skip and class counts that are powers of two of
at least 16 (``unsupported`` says why not); other models use the torch sampler.
With TRITON_INTERPRET=1 set before Triton is imported, the kernel runs on CPU tensors in Triton's
interpreter (numpy, slow): that is how the tests check it against the teacher-forced forward pass
on a machine without a GPU.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import triton
import triton.language as tl

from tts.models.wavenet import CONTEXT_FRAMES, WaveNet, mulaw_decode, stream_keys, uniforms

BLOCK_B = 16  # utterances per program: the smallest M of a tensor-core dot
# Conditioning mixed per sample for a chunk takes B * samples * layers * gate floats: bound it.
CHUNK_BYTES = 256 * 2**20


def unsupported(model: WaveNet) -> Optional[str]:
    """Why the kernel cannot sample this model, or None when it can."""
    c = model.config
    if c.output != "mulaw":
        return f"output {c.output!r} (the kernel samples mu-law only)"
    if c.kernel_size != 2:
        return f"kernel_size {c.kernel_size} (the kernel has two taps)"
    sizes = {"residual_channels": c.residual_channels, "gate_channels / 2": c.gate_channels // 2,
             "skip_channels": c.skip_channels, "mulaw_channels": c.mulaw_channels}
    for name, size in sizes.items():
        if size < 16 or size & (size - 1):
            return f"{name} = {size} (must be a power of two, at least 16)"
    return None


@triton.jit
def _mulaw_class(x, mu):
    """Sample values -> mu-law classes (int32), as torchaudio's mu_law_encoding."""
    x = tl.minimum(tl.maximum(x, -1.0), 1.0)
    y = tl.log(1.0 + mu * tl.abs(x)) / tl.log(1.0 + mu)
    y = tl.where(x < 0.0, -y, y)
    return ((y + 1.0) / 2.0 * mu + 0.5).to(tl.int32)


@triton.jit
def _wavenet_steps(cond_ptr, uni_ptr, forced_ptr, out_ptr, logits_ptr, hist_ptr, prev_ptr, emb_ptr, dec_ptr,
                   wconv_ptr, wres_ptr, bres_ptr, wskip_ptr, bskip_ptr, wh1_ptr, bh1_ptr, wh2_ptr, bh2_ptr, dil_ptr,
                   coef_ptr, lhist_ptr, lexc_ptr, lprev_ptr, lforced_ptr, embp_ptr, embe_ptr,
                   n, t0, inv_temperature, skip_scale,
                   L: tl.constexpr, R: tl.constexpr, G2: tl.constexpr, S: tl.constexpr, Q: tl.constexpr,
                   HS: tl.constexpr, BLOCK: tl.constexpr, FORCED: tl.constexpr, RECORD: tl.constexpr,
                   PRECISION: tl.constexpr, LPC: tl.constexpr = False, ORDER: tl.constexpr = 1,
                   OP: tl.constexpr = 1, HOP: tl.constexpr = 1):
    """Samples t0 .. t0 + n - 1 for the BLOCK utterances of this program.

    cond (B, n, L, 2 * G2) float32: each layer's conditioning plus gate bias, tanh half first;
    uni (B, n) float32 draws; forced (B, n) int32 classes fed back instead of the drawn ones (FORCED);
    out (B, n) float32 samples; logits (B, n, Q) float32 (RECORD); hist (B, L, HS, R) float32, slot
    t % (d + 1) holds layer l's input at t; prev (B,) int32, the class fed back last.
    Weights (float32 or float16): emb (Q, R); wconv (L, tap, half, R, G2) with tap 0 the input at
    t - d, tap 1 the input at t; wres (L, G2, R), wskip (L, G2, S), wh1 (S, S), wh2 (S, Q) laid out
    for ``activations @ weight``; biases float32; dec (Q,) the sample value of each class.

    LPC: coef (B, frames of the chunk, OP) float32, each frame's coefficients a_1 .. a_ORDER padded
    with zeros to OP (a power of two), held for its HOP samples; lhist (B, OP) float32, slot
    t % ORDER holds s'_t; lexc (B,) the last excitation; lprev (B,) s'_(t-1) (instead of prev's
    class); lforced (B, n) float32 s' values fed back (FORCED); embp, embe (Q, R) the prediction's
    and the excitation's embeddings. out then holds s'_t = clip(p_t + e_t), e_t the drawn value.
    """
    rb = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    rr = tl.arange(0, R)
    rg = tl.arange(0, G2)
    rs = tl.arange(0, S)
    rq = tl.arange(0, Q)
    wdt = emb_ptr.dtype.element_ty
    mu = (Q - 1) * 1.0
    if LPC:
        ro = tl.arange(0, OP)
        prev_v = tl.load(lprev_ptr + rb)
        exc = tl.load(lexc_ptr + rb)
        prev = _mulaw_class(prev_v, mu)
    else:
        prev = tl.load(prev_ptr + rb)
    # Not software-pipelined: a step's loads must not be issued before the last step's stores.
    for s in tl.range(n, num_stages=1):
        t = t0 + s
        x = tl.load(emb_ptr + prev[:, None] * R + rr[None, :]).to(tl.float32)  # (BLOCK, R)
        if LPC:  # p_t = -sum_k a_k s'_(t-k), clipped; its embedding and the last excitation's join the input
            coef = tl.load(coef_ptr + (rb[:, None] * (n // HOP) + s // HOP) * OP + ro[None, :])
            lag = (t + ORDER - 1 - ro) % ORDER  # slot of s'_(t-1-k); the padded taps have a = 0
            recent = tl.load(lhist_ptr + rb[:, None] * OP + lag[None, :], mask=ro[None, :] < ORDER, other=0.0)
            pred = tl.minimum(tl.maximum(-tl.sum(coef * recent, axis=1), -1.0), 1.0)
            x += tl.load(embp_ptr + _mulaw_class(pred, mu)[:, None] * R + rr[None, :]).to(tl.float32)
            x += tl.load(embe_ptr + _mulaw_class(exc, mu)[:, None] * R + rr[None, :]).to(tl.float32)
        skips = tl.zeros((BLOCK, S), dtype=tl.float32)
        for layer in range(L):
            d = tl.load(dil_ptr + layer)
            ring = hist_ptr + ((rb[:, None] * L + layer) * HS) * R + rr[None, :]
            past = tl.load(ring + ((t + 1) % (d + 1)) * R)  # the input at t - d
            tl.store(ring + (t % (d + 1)) * R, x)
            cond = cond_ptr + ((rb[:, None] * n + s) * L + layer) * (2 * G2) + rg[None, :]
            w = wconv_ptr + layer * (4 * R * G2) + rr[:, None] * G2 + rg[None, :]
            xp, xt = past.to(wdt), x.to(wdt)
            a = (tl.load(cond) + tl.dot(xp, tl.load(w), input_precision=PRECISION)
                 + tl.dot(xt, tl.load(w + 2 * R * G2), input_precision=PRECISION))
            b = (tl.load(cond + G2) + tl.dot(xp, tl.load(w + R * G2), input_precision=PRECISION)
                 + tl.dot(xt, tl.load(w + 3 * R * G2), input_precision=PRECISION))
            h = ((2.0 * tl.sigmoid(2.0 * a) - 1.0) * tl.sigmoid(b)).to(wdt)  # tanh(a) * sigmoid(b)
            res = tl.dot(h, tl.load(wres_ptr + layer * G2 * R + rg[:, None] * R + rr[None, :]),
                         input_precision=PRECISION) + tl.load(bres_ptr + layer * R + rr)[None, :]
            skips += tl.dot(h, tl.load(wskip_ptr + layer * G2 * S + rg[:, None] * S + rs[None, :]),
                            input_precision=PRECISION) + tl.load(bskip_ptr + layer * S + rs)[None, :]
            x = (x + res) * 0.7071067811865476
        hh = tl.maximum(skips * skip_scale, 0.0).to(wdt)
        hh = tl.dot(hh, tl.load(wh1_ptr + rs[:, None] * S + rs[None, :]), input_precision=PRECISION)
        hh = tl.maximum(hh + tl.load(bh1_ptr + rs)[None, :], 0.0).to(wdt)
        logits = tl.dot(hh, tl.load(wh2_ptr + rs[:, None] * Q + rq[None, :]), input_precision=PRECISION)
        logits += tl.load(bh2_ptr + rq)[None, :]
        if RECORD:
            tl.store(logits_ptr + (rb[:, None] * n + s) * Q + rq[None, :], logits)
        # Inverse-CDF draw from softmax(logits / temperature), as wavenet.mulaw_sample does it.
        z = logits * inv_temperature
        cdf = tl.cumsum(tl.exp(z - tl.max(z, axis=1)[:, None]), axis=1)
        u = tl.load(uni_ptr + rb * n + s)
        k = tl.minimum(tl.sum((cdf < (u * tl.max(cdf, axis=1))[:, None]).to(tl.int32), axis=1), Q - 1)
        if LPC:  # the draw is the excitation: s'_t = p_t + e_t
            value = tl.minimum(tl.maximum(pred + tl.load(dec_ptr + k), -1.0), 1.0)
            tl.store(out_ptr + rb * n + s, value)
            if FORCED:
                value = tl.load(lforced_ptr + rb * n + s)
            exc = value - pred
            tl.store(lhist_ptr + rb * OP + t % ORDER, value)
            prev_v = value
            prev = _mulaw_class(value, mu)
        else:
            tl.store(out_ptr + rb * n + s, tl.load(dec_ptr + k))
            if FORCED:
                prev = tl.load(forced_ptr + rb * n + s)
            else:
                prev = k
        tl.debug_barrier()  # this step's ring-buffer writes are seen by every thread of the next
    if LPC:
        tl.store(lprev_ptr + rb, prev_v)
        tl.store(lexc_ptr + rb, exc)
    else:
        tl.store(prev_ptr + rb, prev)


def _pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Pad dim 0 with zeros to ``rows``."""
    return torch.cat([x, x.new_zeros((rows - x.shape[0],) + tuple(x.shape[1:]))]) if rows > x.shape[0] else x


class TritonSampler:
    """``WaveNet.generate`` with the persistent kernel; the same interface as wavenet.TorchSampler
    (``forced`` and ``record`` serve the tests). ``weight_dtype`` float16 halves the weight traffic
    per step; ``precise`` makes float32 dots exact (IEEE) instead of TF32. ``chunk_frames``: frames
    per kernel launch (default: as many as CHUNK_BYTES of conditioning allows, at most 16)."""

    def __init__(self, model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *, temperature: float = 1.0,
                 seed: Optional[int] = None, forced: Optional[torch.Tensor] = None, record: bool = False,
                 weight_dtype: Optional[torch.dtype] = None, precise: bool = False, chunk_frames: Optional[int] = None):
        reason = unsupported(model)
        if reason is not None:
            raise ValueError(f"the Triton sampler does not support this WaveNet: {reason}")
        if mel.device.type != "cuda" and not triton.knobs.runtime.interpret:
            raise ValueError("the Triton sampler needs a CUDA device (on the CPU it runs only in Triton's "
                             "interpreter, TRITON_INTERPRET=1, which the tests use)")
        self.model, self.record, self.device = model, record, mel.device
        self.B, self.frames, self.hop = mel.shape[0], mel.shape[2], model.hop_length
        self.rows = -(-self.B // BLOCK_B) * BLOCK_B
        self.lengths = lengths.long().cpu()
        self.keys = stream_keys(seed, self.B)
        self.inv_temperature = 1.0 / float(temperature)
        self.lpc = model.lpc is not None
        if forced is None:
            self.forced = None
        elif self.lpc:  # s' values
            self.forced = _pad_rows(forced.to(self.device).float(), self.rows)
        else:  # mu-law classes
            self.forced = _pad_rows(forced.to(self.device).round().int(), self.rows)
        if weight_dtype is None:
            weight_dtype = torch.float16 if self.device.type == "cuda" and not precise else torch.float32
        self.precision = "ieee" if precise else "tf32"
        self.padded = _pad_rows(model.prepare_conditioning(mel, lengths.to(mel.device)), self.rows)
        self.cond_weight, self.gate_bias = model.cond_weights()
        self.phase = model.upsampler.phase_weights().float()  # (hop, 2J + 1)
        self.weights = self._pack(weight_dtype)
        self.chunk_frames = chunk_frames
        if self.lpc:  # (rows, F, OP): each frame's a_1 .. a_order, zero-padded to a power of two
            coeffs = model.lpc_coefficients(mel).float()
            self.order = coeffs.shape[2]
            self.order_p2 = max(2, 1 << (self.order - 1).bit_length())
            coeffs = torch.nn.functional.pad(coeffs, (0, self.order_p2 - self.order))
            self.coeffs = _pad_rows(coeffs.to(self.device), self.rows)

    def _pack(self, dtype: torch.dtype) -> dict:
        """The model's weights in the kernel's layouts (see _wavenet_steps)."""
        m, c = self.model, self.model.config
        R, G2, S = c.residual_channels, c.gate_channels // 2, c.skip_channels
        blocks = m.blocks
        conv = torch.stack([b.conv.weight for b in blocks])  # (L, G, R, 2)
        conv = conv.reshape(len(blocks), 2, G2, R, 2).permute(0, 4, 1, 3, 2)  # (L, tap, half, R, G2)
        out = torch.stack([b.out.weight[:, :, 0] for b in blocks])  # (L, R + S, G2)
        out_bias = torch.stack([b.out.bias for b in blocks])
        head1, head2 = m.head[1], m.head[3]
        weights = {
            "emb": m.input.weight, "wconv": conv, "wres": out[:, :R].transpose(1, 2),
            "wskip": out[:, R:].transpose(1, 2), "wh1": head1.weight[:, :, 0].T, "wh2": head2.weight[:, :, 0].T,
        }
        packed = {name: w.detach().to(self.device, dtype).contiguous() for name, w in weights.items()}
        biases = {"bres": out_bias[:, :R], "bskip": out_bias[:, R:], "bh1": head1.bias, "bh2": head2.bias}
        packed.update({name: b.detach().to(self.device, torch.float32).contiguous() for name, b in biases.items()})
        packed["dec"] = mulaw_decode(torch.arange(c.mulaw_channels), c.mulaw_channels).to(self.device)
        packed["dil"] = torch.tensor(m.dilations, dtype=torch.int32, device=self.device)
        if m.lpc is not None:
            packed["embp"] = m.input_pred.weight.detach().to(self.device, dtype).contiguous()
            packed["embe"] = m.input_exc.weight.detach().to(self.device, dtype).contiguous()
        return packed

    def _conditioning(self, f0: int, f1: int) -> torch.Tensor:
        """Frames f0 .. f1 - 1 -> each sample's conditioning plus gate bias, (rows, samples, L, G)."""
        n_ctx = 2 * CONTEXT_FRAMES + 1
        projected = self.model.project_frames(self.padded[:, :, f0: f1 + n_ctx - 1], self.cond_weight)
        windows = projected.unfold(1, n_ctx, 1)  # (rows, frames, L, G, 2J + 1)
        mixed = torch.einsum("pj,bflgj->bfplg", self.phase, windows)
        rows, frames, hop, L, G = mixed.shape
        return (mixed.reshape(rows, frames * hop, L, G) + self.gate_bias.float()).contiguous()

    def run(self, progress: bool = False) -> torch.Tensor:
        """-> audio (B, frames * hop) float32; logits of every step in ``self.logits`` if recording."""
        from tqdm import tqdm

        m, c, hop, dev, rows = self.model, self.model.config, self.hop, self.device, self.rows
        L, R, G = len(m.blocks), c.residual_channels, c.gate_channels
        Q = c.mulaw_channels
        T = self.frames * hop
        out = torch.zeros(self.B, T, device=dev)
        self.logits = torch.zeros(self.B, T, Q, device=dev) if self.record else None
        end = int(self.lengths.max()) * hop if self.B else 0
        chunk = self.chunk_frames or max(1, min(16, CHUNK_BYTES // (rows * hop * L * G * 4)))
        hist = torch.zeros(rows, L, max(m.dilations) + 1, R, device=dev)
        prev = torch.full((rows,), int(m.initial_input), dtype=torch.int32, device=dev)
        w = self.weights
        lpc_args = {"LPC": False}
        if self.lpc:
            lhist = torch.zeros(rows, self.order_p2, device=dev)
            lexc = torch.zeros(rows, device=dev)
            lprev = torch.full((rows,), float(m.initial_input), device=dev)
            lpc_args = {"LPC": True, "ORDER": self.order, "OP": self.order_p2, "HOP": hop}
        else:
            lhist = lexc = lprev = prev.float()  # unused
        bar = tqdm(total=end, unit="sample", unit_scale=True, disable=not progress, desc="wavenet")
        for f0 in range(0, math.ceil(end / hop), chunk):
            f1 = min(self.frames, f0 + chunk)
            n = (f1 - f0) * hop
            cond = self._conditioning(f0, f1)
            draws = uniforms(self.keys, f0 * hop, n)[:, :, 0].astype(np.float32)
            uni = _pad_rows(torch.from_numpy(draws).to(dev), rows).contiguous()
            window = self.forced[:, f0 * hop: f1 * hop].contiguous() if self.forced is not None else None
            forced = window if window is not None and not self.lpc else prev
            lforced = window if window is not None and self.lpc else lprev
            coeffs = self.coeffs[:, f0:f1].contiguous() if self.lpc else lprev
            samples = torch.empty(rows, n, device=dev)
            logits = torch.empty(rows, n, Q, device=dev) if self.record else samples
            _wavenet_steps[(rows // BLOCK_B,)](
                cond, uni, forced, samples, logits, hist, prev, w["emb"], w["dec"], w["wconv"], w["wres"], w["bres"],
                w["wskip"], w["bskip"], w["wh1"], w["bh1"], w["wh2"], w["bh2"], w["dil"],
                coeffs, lhist, lexc, lprev, lforced, w.get("embp", w["emb"]), w.get("embe", w["emb"]),
                n, f0 * hop, self.inv_temperature, m.skip_scale,
                L=L, R=R, G2=G // 2, S=c.skip_channels, Q=Q, HS=max(m.dilations) + 1, BLOCK=BLOCK_B,
                FORCED=self.forced is not None, RECORD=self.record, PRECISION=self.precision, **lpc_args)
            out[:, f0 * hop: f1 * hop] = samples[: self.B]
            if self.record:
                self.logits[:, f0 * hop: f1 * hop] = logits[: self.B]
            bar.update(min(n, end - f0 * hop))
        bar.close()
        mask = torch.arange(T, device=dev)[None, :] < (self.lengths.to(dev) * hop)[:, None]
        return out * mask

