"""A persistent Triton kernel for WaveNet sampling on the GPU (``WaveNet.generate(backend="triton")``).

The torch sampler launches a few hundred small kernels per audio sample, so even replayed from a
CUDA graph it is bound by kernel latency, not arithmetic. Here one kernel launch generates a whole
chunk of samples: each program owns BLOCK_B utterances and runs the autoregressive loop itself,
every layer of every step, keeping the current activations in registers, each layer's past inputs
(the dilated convolution's queue) in a small ring buffer in global memory, and reading the weights
(1 MB in fp16 at the 20-layer, 64-channel size) from L2 each step, as NVIDIA's nv-wavenet does with
hand-written CUDA. The conditioning for the chunk is mixed per sample beforehand with batched
matrix products (``WaveNet.project_frames`` and the upsampler's phase weights); the weights are
those of tts.models.sampling.PackedWeights and the random draws the same counter-based ones as the
other samplers (``sampling.uniforms``).

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

from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
import triton
import triton.language as tl

from tts.models.sampling import CONTEXT_FRAMES, PackedWeights, Sampler, Temperature, pack_weights

if TYPE_CHECKING:
    from tts.models.wavenet import WaveNet

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
                   n, t0, itemp_ptr, skip_scale,
                   L: tl.constexpr, R: tl.constexpr, G2: tl.constexpr, S: tl.constexpr, Q: tl.constexpr,
                   HS: tl.constexpr, BLOCK: tl.constexpr, FORCED: tl.constexpr, RECORD: tl.constexpr,
                   PRECISION: tl.constexpr, LPC: tl.constexpr = False, ORDER: tl.constexpr = 1,
                   OP: tl.constexpr = 1, HOP: tl.constexpr = 1):
    """Samples t0 .. t0 + n - 1 for the BLOCK utterances of this program.

    cond (B, n, L, 2 * G2) float32: each layer's conditioning plus gate bias, tanh half first;
    uni (B, n) float32 draws; itemp (B, n) float32 each sample's 1 / temperature; forced (B, n) int32
    classes fed back instead of the drawn ones (FORCED);
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
        z = logits * tl.load(itemp_ptr + rb * n + s)[:, None]
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


class TritonSampler(Sampler):
    """``WaveNet.generate(backend="triton")`` with the persistent kernel. ``weight_dtype`` float16
    halves the weight traffic per step; ``precise`` makes float32 dots exact (IEEE) instead of TF32.
    ``chunk_frames``: frames per kernel launch (default: as many as CHUNK_BYTES of conditioning
    allows, at most 16). ``forced`` and ``record``: see tts.models.sampling."""

    @torch.no_grad()
    def __init__(self, model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *, temperature: Temperature = 1.0,
                 seed: Optional[int] = None, forced: Optional[torch.Tensor] = None, record: bool = False,
                 weight_dtype: Optional[torch.dtype] = None, precise: bool = False, chunk_frames: Optional[int] = None):
        reason = unsupported(model)
        if reason is not None:
            raise ValueError(f"the Triton sampler does not support this WaveNet: {reason}")
        if mel.device.type != "cuda" and not triton.knobs.runtime.interpret:
            raise ValueError("the Triton sampler needs a CUDA device (on the CPU it runs only in Triton's "
                             "interpreter, TRITON_INTERPRET=1, which the tests use)")
        super().__init__(model, mel, lengths, temperature=temperature, seed=seed, forced=forced, record=record)
        c = model.config
        # Programs own BLOCK_B utterances each: every per-utterance input is padded to ``rows``.
        self.rows = -(-self.B // BLOCK_B) * BLOCK_B
        # Each sample's 1 / temperature: a frame's value repeated for its hop samples, chunk by chunk.
        self.inv_temperatures = _pad_rows(1.0 / self.temperatures.to(self.device), self.rows)
        self.lpc = self.coeffs is not None
        if weight_dtype is None:
            weight_dtype = torch.float16 if self.device.type == "cuda" and not precise else torch.float32
        self.precision = "ieee" if precise else "tf32"
        self.padded = _pad_rows(self.padded, self.rows)
        packed = pack_weights(model)
        self.gate_bias = packed.gate_bias
        self.weights = self._layouts(packed, weight_dtype)
        L, G = len(model.blocks), c.gate_channels
        self.chunk_frames = chunk_frames or max(1, min(16, CHUNK_BYTES // (self.rows * self.hop * L * G * 4)))
        if self.lpc:  # (rows, F, OP): each frame's a_1 .. a_order, zero-padded to a power of two
            coeffs = self.coeffs.float()
            self.order = coeffs.shape[2]
            self.order_p2 = max(2, 1 << (self.order - 1).bit_length())
            coeffs = torch.nn.functional.pad(coeffs, (0, self.order_p2 - self.order))
            self.coeffs = _pad_rows(coeffs.to(self.device), self.rows)

    def _layouts(self, w: PackedWeights, dtype: torch.dtype) -> dict:
        """The packed weights in the kernel's layouts (see _wavenet_steps): weight matrices in
        ``dtype``, biases float32, on the sampler's device."""
        c = self.model.config
        R, G2 = c.residual_channels, c.gate_channels // 2
        L, K = w.taps.shape[:2]
        weights = {
            "emb": w.embed, "wconv": w.taps.view(L, K, R, 2, G2).permute(0, 1, 3, 2, 4),  # (L, tap, half, R, G2)
            "wres": w.out[:, :, :R], "wskip": w.out[:, :, R:], "wh1": w.head1, "wh2": w.head2,
        }
        if self.lpc:
            weights.update(embp=w.pred_embed, embe=w.exc_embed)
        packed = {name: m.to(self.device, dtype).contiguous() for name, m in weights.items()}
        biases = {"bres": w.out_bias[:, :R], "bskip": w.out_bias[:, R:], "bh1": w.head1_bias, "bh2": w.head2_bias,
                  "dec": w.decode}
        packed.update({name: b.to(self.device, torch.float32).contiguous() for name, b in biases.items()})
        packed["dil"] = torch.tensor(w.dilations, dtype=torch.int32, device=self.device)
        return packed

    def _conditioning(self, f0: int, f1: int) -> torch.Tensor:
        """Frames f0 .. f1 - 1 -> each sample's conditioning plus gate bias, (rows, samples, L, G)."""
        n_ctx = 2 * CONTEXT_FRAMES + 1
        windows = self.projected(f0, f1).unfold(1, n_ctx, 1)  # (rows, frames, L, G, 2J + 1)
        mixed = torch.einsum("pj,bflgj->bfplg", self.phase, windows)
        rows, frames, hop, L, G = mixed.shape
        return (mixed.reshape(rows, frames * hop, L, G) + self.gate_bias).contiguous()

    def begin(self) -> None:
        m, c, rows, dev = self.model, self.model.config, self.rows, self.device
        self.hist = torch.zeros(rows, len(m.blocks), max(m.dilations) + 1, c.residual_channels, device=dev)
        self.prev = torch.full((rows,), int(m.initial_input), dtype=torch.int32, device=dev)
        if self.lpc:
            self.lhist = torch.zeros(rows, self.order_p2, device=dev)
            self.lexc = torch.zeros(rows, device=dev)
            self.lprev = torch.full((rows,), float(m.initial_input), device=dev)
        else:
            self.lhist = self.lexc = self.lprev = self.prev.float()  # unused

    def chunk(self, f0, f1, draws, forced):
        m, c, hop, dev, rows, w = self.model, self.model.config, self.hop, self.device, self.rows, self.weights
        L, G, Q = len(m.blocks), c.gate_channels, c.mulaw_channels
        n = (f1 - f0) * hop
        cond = self._conditioning(f0, f1)
        uni = _pad_rows(torch.from_numpy(draws[:, :, 0].astype(np.float32)).to(dev), rows).contiguous()
        itemp = self.inv_temperatures[:, f0:f1].repeat_interleave(hop, dim=1).contiguous()  # (rows, n)
        if forced is not None:  # s' values (LPC) or mu-law classes
            forced = _pad_rows(forced if self.lpc else forced.round().int(), rows).contiguous()
        classes = forced if forced is not None and not self.lpc else self.prev
        values = forced if forced is not None and self.lpc else self.lprev
        coeffs = self.coeffs[:, f0:f1].contiguous() if self.lpc else self.lprev
        lpc_args = {"LPC": True, "ORDER": self.order, "OP": self.order_p2, "HOP": hop} if self.lpc else {"LPC": False}
        samples = torch.empty(rows, n, device=dev)
        logits = torch.empty(rows, n, Q, device=dev) if self.record else samples
        _wavenet_steps[(rows // BLOCK_B,)](
            cond, uni, classes, samples, logits, self.hist, self.prev, w["emb"], w["dec"], w["wconv"], w["wres"],
            w["bres"], w["wskip"], w["bskip"], w["wh1"], w["bh1"], w["wh2"], w["bh2"], w["dil"],
            coeffs, self.lhist, self.lexc, self.lprev, values, w.get("embp", w["emb"]), w.get("embe", w["emb"]),
            n, f0 * hop, itemp, m.skip_scale,
            L=L, R=c.residual_channels, G2=G // 2, S=c.skip_channels, Q=Q, HS=max(m.dilations) + 1, BLOCK=BLOCK_B,
            FORCED=forced is not None, RECORD=self.record, PRECISION=self.precision, **lpc_args)
        return samples[: self.B], (logits[: self.B] if self.record else None)
