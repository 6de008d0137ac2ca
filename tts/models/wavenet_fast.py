"""Fused per-sample WaveNet sampler for the CPU, in Numba.

One call runs a stretch of samples for a whole batch; utterances are split into one group per
thread (``prange``), and the utterances of a group are stepped together so each weight row loaded
from cache serves all of them. Per sample and layer the work is two matrix-vector products:

    gate (G)  = bias + cond + [x(t - d); x(t)] @ W_taps   (the dilated taps fused, (K * R) x G)
    [res, skip] = gated(gate) @ W_out                      (residual and skip fused, G/2 x (R + S))

Weights are float32, stored (inputs, outputs) so the inner loop runs over contiguous outputs and
vectorises; tanh, sigmoid and the softmax's exp use polynomial approximations that vectorise too
(no libm calls in the hot loops). Conditioning comes in per frame (``WaveNet.project_frames``) and
is mixed per sample with the upsampler's phase weights. The kernel reads the weights of
tts.models.sampling.PackedWeights and the draws of tts.models.sampling.uniforms, as the other
samplers do, so a seed gives the same draws on every backend.

Where the time goes (20 layers, 64/128/64 channels): one utterance streams all 2 MB of weights
from L3 for every sample (they do not fit a 1 MB L2), so batch 1 is bound by cache bandwidth;
a group of two or more shares each weight row loaded from cache among its utterances.

The kernel compiles on first use (~15 s) and is cached on disk (``cache=True``), so later
processes load it in under a second.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Optional

import numpy as np
import torch
from numba import njit, prange

from tts.models.sampling import LOG_SCALE_MIN, Sampler, Temperature, pack_weights

if TYPE_CHECKING:
    from tts.models.wavenet import WaveNet

# Samples per kernel call: the progress bar's resolution, and the conditioning held at once
# (B x (chunk / hop + 4) x L x G floats).
CHUNK_SAMPLES = 16384


@njit(fastmath=True, cache=True, inline="always")
def _tanh(x):
    """float32 tanh, Eigen's rational approximation (error ~1e-7 over the clamped range)."""
    c = np.float32(7.90531110763549805)
    x = min(max(x, -c), c)
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


@njit(fastmath=True, cache=True, inline="always")
def _exp_neg(x):
    """float32 exp(x) for x <= 0, relative error < 1e-5; exp(x) below exp(-30) reads as exp(-30).
    A Taylor polynomial at x / 64 squared six times: no libm call, so loops over it vectorise."""
    x = max(x, np.float32(-30.0)) * np.float32(1.0 / 64.0)
    p = np.float32(1.0 / 5040.0) * x + np.float32(1.0 / 720.0)
    p = p * x + np.float32(1.0 / 120.0)
    p = p * x + np.float32(1.0 / 24.0)
    p = p * x + np.float32(1.0 / 6.0)
    p = p * x + np.float32(0.5)
    p = p * x + np.float32(1.0)
    p = p * x + np.float32(1.0)
    for _ in range(6):
        p = p * p
    return p


@njit(fastmath=True, cache=True, inline="always")
def _inverse_cdf(weights, n, u):
    """Index drawn from unnormalised weights[:n] (overwritten by their running sum) for u in (0, 1)."""
    total = np.float32(0.0)
    for k in range(n):
        total += weights[k]
        weights[k] = total
    target = np.float32(u * total)
    lo, hi = 0, n - 1  # first k with weights[k] > target
    while lo < hi:
        mid = (lo + hi) // 2
        if weights[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(fastmath=True, cache=True)
def _accumulate(w, x, y, nb):
    """y[b] += x[b] @ w for b < nb. w (n_in, n_out) C-contiguous float32; x (nb, n_in); y (nb, n_out).

    Eight input rows at a time: each pass over y[b] then does eight multiply-adds per load and
    store of the accumulator, and the eight weight rows stay in L1 for all nb utterances.

    Plain loops, not BLAS: Numba's np.dot calls SciPy's OpenBLAS, whose cost on these small
    products depends on the build. On one install (SciPy 1.17, Numba 0.68, a 2-core Zen 4) it made
    a batch of 8 no faster than batch 1 (17k samples/s either way, 47k with these loops;
    docs/wavenet.md), where an earlier install had run it 2-3x faster than the loops.
    """
    n_in, n_out = w.shape
    i = 0
    while i + 8 <= n_in:
        w0, w1, w2, w3 = w[i], w[i + 1], w[i + 2], w[i + 3]
        w4, w5, w6, w7 = w[i + 4], w[i + 5], w[i + 6], w[i + 7]
        for b in range(nb):
            xb, yb = x[b], y[b]
            x0, x1, x2, x3 = xb[i], xb[i + 1], xb[i + 2], xb[i + 3]
            x4, x5, x6, x7 = xb[i + 4], xb[i + 5], xb[i + 6], xb[i + 7]
            for o in range(n_out):
                yb[o] += ((w0[o] * x0 + w1[o] * x1) + (w2[o] * x2 + w3[o] * x3)) + (
                    (w4[o] * x4 + w5[o] * x5) + (w6[o] * x6 + w7[o] * x7))
        i += 8
    while i < n_in:
        wi = w[i]
        for b in range(nb):
            xi, yb = x[b, i], y[b]
            for o in range(n_out):
                yb[o] += wi[o] * xi
        i += 1


@njit(fastmath=True, cache=True, inline="always")
def _mulaw_class(x, mu):
    """Sample value -> mu-law class, as torchaudio's mu_law_encoding (mu = classes - 1, float32)."""
    x = min(max(x, np.float32(-1.0)), np.float32(1.0))
    y = np.float32(math.copysign(math.log1p(mu * abs(x)) / math.log1p(mu), x))
    return int((y + np.float32(1.0)) / np.float32(2.0) * mu + np.float32(0.5))


@njit(fastmath=True, cache=True, parallel=True)
def _run(t0, t1, f0, hop, P, phase, gate_bias, groups, ends, draws, prev, queue, q_off, q_len, dilation,
         embed, in_w, in_b, w_taps, w_out, b_out, w_h1, b_h1, w_h2, b_h2, mol, temps,
         log_scale_min, decode, forced, teacher, logits, record, out, lpc, coeffs, hist, exc, emb_p, emb_e,
         w_lpc, mu):
    """Generate samples t0 .. t1 - 1 of every utterance, in place.

    Utterances are split into contiguous groups, one per thread: groups[g] .. groups[g + 1].
    P (frames_in_chunk + 4, L, B, G): projected conditioning of frames f0 - 2 ...; phase (hop, 5);
    gate_bias (L, G). ends (B,): samples to generate per utterance. draws (B, n, 2) float64: the
    uniforms of samples t0 .. t0 + n - 1 (tts.models.sampling.uniforms). prev (B,): last input value (mu-law class or sample). queue (Q, B, R): ring buffers,
    layer l at slots q_off[l] .. q_off[l] + q_len[l] (utterances side by side, so a group reads
    one contiguous block per layer and step). embed (classes, R) or in_w, in_b (R,): the input
    layer. w_taps (L, K * R, G); w_out (L, G/2, R + S); w_h1 (S, S), w_h2 (S, out): the head (skip
    scale folded into w_h1). decode (classes,): mu-law class -> sample. forced (B, n): values fed
    back instead of the drawn ones when ``teacher``; logits (B, n, out) written when ``record``.
    temps (B, F): each frame's sampling temperature (mu-law: softmax(logits / T); mixture: T scales
    the logistic).
    out (B, n): the samples. (n: samples of the chunk that starts at t0; t1 - t0 <= n.) Model constants such as log_scale_min come in as arguments: Numba
    freezes module globals into the on-disk cache, which would not notice them change.

    LPC (``lpc``): coeffs (B, F, order) per frame, held for its hop samples; hist (B, order) ring of
    the last s' values (slot t % order holds s'_t); exc (B,) the last excitation; prev holds s'_(t-1)
    as a value. The input is embed[s'_(t-1)] + emb_p[p_t] + emb_e[e_(t-1)] (mu-law classes, mu =
    classes - 1) or in_w s' + in_b + w_lpc[0] p + w_lpc[1] e ("mol"); the draw is e_t, and out
    holds s'_t = clip(p_t + e_t); forced values are s'.
    """
    n_layers, KR, G = w_taps.shape
    H = G // 2
    R = queue.shape[2]
    S = w_h1.shape[0]
    n_out = w_h2.shape[1]
    K = KR // R
    n_ctx = phase.shape[1]
    n_groups = groups.shape[0] - 1
    sqrt_half = np.float32(math.sqrt(0.5))
    half = np.float32(0.5)
    for g in prange(n_groups):
        first, nb = groups[g], groups[g + 1] - groups[g]
        stop = t0
        for bi in range(nb):
            stop = max(stop, min(t1, ends[first + bi]))
        z = np.empty((nb, KR), np.float32)
        acc = np.empty((nb, G), np.float32)
        h = np.empty((nb, H), np.float32)
        rs = np.empty((nb, w_out.shape[2]), np.float32)
        skip = np.empty((nb, S), np.float32)
        s1 = np.zeros((nb, S), np.float32)
        lg = np.empty((nb, n_out), np.float32)
        cdf = np.empty(n_out, np.float32)
        pred = np.zeros(nb, np.float32)
        order = coeffs.shape[2]
        for t in range(t0, stop):
            frame = t // hop - f0
            p = t % hop
            # Input layer, written where the first layer's current tap goes.
            for bi in range(nb):
                v = prev[first + bi]
                if lpc:
                    item = first + bi
                    fr = t // hop
                    acc_p = np.float32(0.0)
                    for k in range(order):  # p_t = -sum_k a_k s'_(t-k)
                        acc_p -= coeffs[item, fr, k] * hist[item, (t - 1 - k) % order]
                    pv = min(max(acc_p, np.float32(-1.0)), np.float32(1.0))
                    pred[bi] = pv
                    ev = exc[item]
                    if mol:
                        for r in range(R):
                            z[bi, KR - R + r] = in_w[r] * v + in_b[r] + w_lpc[0, r] * pv + w_lpc[1, r] * ev
                    else:
                        e0 = embed[_mulaw_class(v, mu)]
                        e1, e2 = emb_p[_mulaw_class(pv, mu)], emb_e[_mulaw_class(ev, mu)]
                        for r in range(R):
                            z[bi, KR - R + r] = e0[r] + e1[r] + e2[r]
                elif mol:
                    for r in range(R):
                        z[bi, KR - R + r] = in_w[r] * v + in_b[r]
                else:
                    e = embed[int(v)]
                    for r in range(R):
                        z[bi, KR - R + r] = e[r]
            skip[:] = 0.0
            for layer in range(n_layers):
                size, off, d = q_len[layer], q_off[layer], dilation[layer]
                for bi in range(nb):
                    item = first + bi
                    a = acc[bi]
                    for o in range(G):
                        a[o] = gate_bias[layer, o]
                    for j in range(n_ctx):
                        c = phase[p, j]
                        if c != 0.0:
                            row = P[frame + j, layer, item]
                            for o in range(G):
                                a[o] += c * row[o]
                    # Past taps from the ring buffer; the current input is already in place.
                    for k in range(K - 1):
                        past = queue[off + (t - (K - 1 - k) * d) % size, item]
                        for r in range(R):
                            z[bi, k * R + r] = past[r]
                    cur = queue[off + t % size, item]
                    for r in range(R):
                        cur[r] = z[bi, KR - R + r]
                _accumulate(w_taps[layer], z, acc, nb)
                for bi in range(nb):
                    for o in range(H):
                        h[bi, o] = _tanh(acc[bi, o]) * (half + half * _tanh(half * acc[bi, H + o]))
                    for o in range(rs.shape[1]):
                        rs[bi, o] = b_out[layer, o]
                _accumulate(w_out[layer], h, rs, nb)
                for bi in range(nb):
                    for r in range(R):
                        z[bi, KR - R + r] = (z[bi, KR - R + r] + rs[bi, r]) * sqrt_half
                    for o in range(S):
                        skip[bi, o] += rs[bi, R + o]
            # Head: relu -> 1x1 -> relu -> 1x1.
            for bi in range(nb):
                for o in range(S):
                    skip[bi, o] = max(skip[bi, o], np.float32(0.0))
                    s1[bi, o] = b_h1[o]
            _accumulate(w_h1, skip, s1, nb)
            for bi in range(nb):
                for o in range(S):
                    s1[bi, o] = max(s1[bi, o], np.float32(0.0))
                for o in range(n_out):
                    lg[bi, o] = b_h2[o]
            _accumulate(w_h2, s1, lg, nb)
            for bi in range(nb):
                item = first + bi
                if t >= ends[item]:
                    continue
                if record:
                    for o in range(n_out):
                        logits[item, t - t0, o] = lg[bi, o]
                temperature = temps[item, t // hop]
                u1 = draws[item, t - t0, 0]
                u2 = draws[item, t - t0, 1]
                if mol:
                    M = n_out // 3
                    top = lg[bi, 0]
                    for k in range(M):
                        top = max(top, lg[bi, k])
                    for k in range(M):
                        cdf[k] = _exp_neg(lg[bi, k] - top)
                    pick = _inverse_cdf(cdf, M, u1)
                    log_s = max(lg[bi, 2 * M + pick], log_scale_min)
                    x = lg[bi, M + pick] + math.exp(log_s) * temperature * (math.log(u2) - math.log1p(-u2))
                    value = min(max(np.float32(x), np.float32(-1.0)), np.float32(1.0))
                    fed = value
                else:
                    top = lg[bi, 0]
                    for k in range(n_out):
                        top = max(top, lg[bi, k])
                    inv_temp = np.float32(1.0) / temperature
                    for k in range(n_out):
                        cdf[k] = _exp_neg((lg[bi, k] - top) * inv_temp)
                    pick = _inverse_cdf(cdf, n_out, u1)
                    value = decode[pick]
                    fed = np.float32(pick)
                if lpc:  # the draw is the excitation
                    value = min(max(pred[bi] + value, np.float32(-1.0)), np.float32(1.0))
                    fed = value
                out[item, t - t0] = value
                fed = forced[item, t - t0] if teacher else fed
                prev[item] = fed
                if lpc:
                    exc[item] = fed - pred[bi]
                    hist[item, t % order] = fed
    return 0


class FastSampler(Sampler):
    """``WaveNet.generate(backend="fast")``: the kernel above on the CPU, in chunks of
    ``chunk_frames`` frames (default CHUNK_SAMPLES worth). The weights are packed from the module
    when the sampler is made (a few milliseconds), so it always reflects the current weights.
    ``threads``: groups to split the batch into (default: Numba's thread count). ``forced`` and
    ``record``: see tts.models.sampling. Returns CPU tensors whatever the model's device.
    """

    @torch.no_grad()
    def __init__(self, model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *, temperature: Temperature = 1.0,
                 seed: Optional[int] = None, forced: Optional[torch.Tensor] = None, record: bool = False,
                 threads: Optional[int] = None, chunk_frames: Optional[int] = None):
        import numba

        super().__init__(model, mel, lengths, temperature=temperature, seed=seed, forced=forced, record=record,
                         device=torch.device("cpu"))
        c, w = model.config, pack_weights(model)
        self.chunk_frames = chunk_frames or max(1, CHUNK_SAMPLES // self.hop)
        self.mol, self.lpc = c.output == "mol", self.coeffs is not None
        # Longest first, dealt into contiguous groups of similar length, one per thread; the
        # kernel sees utterances in this order and ``chunk`` puts them back.
        self.order = np.argsort(-self.lengths.numpy(), kind="stable")
        self.inverse = np.argsort(self.order)
        self.ends = np.ascontiguousarray(self.lengths.numpy()[self.order] * self.hop, dtype=np.int64)
        with _kernel_threads():  # numba.get_num_threads() starts Numba's pool on the first call
            n_groups = max(1, min(self.B, threads or numba.get_num_threads()))
        self.groups = np.linspace(0, self.B, n_groups + 1).round().astype(np.int64)
        rows = torch.from_numpy(self.order)
        self.padded = self.padded.cpu()[rows]
        self.cond_weight = self.cond_weight.float().cpu()
        self.phase = _f32(self.phase)
        if self.lpc:
            self.coeffs = _f32(self.coeffs.cpu()[rows])
        self.temperatures = _f32(self.temperatures[rows])

        # The kernel's arrays: (inputs, outputs) float32, from the packed view.
        L, K, R, G = w.taps.shape
        self.w_taps = _f32(w.taps.reshape(L, K * R, G))  # tap k, channel r at row k * R + r
        self.gate_bias = _f32(w.gate_bias)
        self.w_out, self.b_out = _f32(w.out), _f32(w.out_bias)
        # relu(s * a) = a * relu(s) for a > 0: the skip scale goes into the first head layer.
        self.w_h1, self.b_h1 = _f32(w.head1 * w.skip_scale), _f32(w.head1_bias)
        self.w_h2, self.b_h2 = _f32(w.head2), _f32(w.head2_bias)
        unused = np.zeros((1, R), np.float32)  # Numba takes arrays, not None, for a path not taken
        if self.mol:
            self.embed, self.decode = unused, np.zeros(1, np.float32)
            self.in_w, self.in_b = _f32(w.input_weight), _f32(w.input_bias)
        else:
            self.embed, self.decode = _f32(w.embed), _f32(w.decode)
            self.in_w = self.in_b = np.zeros(R, np.float32)
        self.mu = np.float32(c.mulaw_channels - 1)
        self.emb_p = _f32(w.pred_embed) if w.pred_embed is not None else unused
        self.emb_e = _f32(w.exc_embed) if w.exc_embed is not None else unused
        self.w_lpc = _f32(w.lpc_weight) if w.lpc_weight is not None else np.zeros((2, R), np.float32)
        self.dilation = np.asarray(w.dilations, dtype=np.int64)
        self.q_len = (K - 1) * self.dilation
        self.q_off = np.concatenate([[0], np.cumsum(self.q_len)[:-1]]).astype(np.int64)

    def run(self, progress: bool = False, on_chunk=None) -> torch.Tensor:
        with _kernel_threads():
            return super().run(progress, on_chunk)

    def begin(self) -> None:
        B, R = self.B, self.model.config.residual_channels
        self.queue = np.zeros((int(self.q_len.sum()), B, R), np.float32)
        self.prev = np.full(B, self.model.initial_input, np.float32)
        self.hist = np.zeros((B, self.coeffs.shape[2]) if self.lpc else (1, 1), np.float32)
        self.exc = np.zeros(B, np.float32)

    def chunk(self, f0, f1, draws, forced):
        hop, order, n = self.hop, self.order, (f1 - f0) * self.hop
        P = np.ascontiguousarray(self.projected(f0, f1).permute(1, 2, 0, 3).numpy())  # (frames + 4, L, B, G)
        out = np.zeros((self.B, n), np.float32)
        logits = np.zeros((self.B, n, self.model.out_channels) if self.record else (1, 1, 1), np.float32)
        teacher = forced is not None
        forced = np.ascontiguousarray(forced.numpy()[order] if teacher else np.zeros((1, 1)), dtype=np.float32)
        coeffs = self.coeffs if self.lpc else np.zeros((1, 1, 1), np.float32)
        _run(f0 * hop, min(f1 * hop, int(self.ends.max())), f0, hop, P, self.phase, self.gate_bias, self.groups,
             self.ends, np.ascontiguousarray(draws[order]), self.prev, self.queue, self.q_off, self.q_len,
             self.dilation, self.embed, self.in_w, self.in_b, self.w_taps, self.w_out, self.b_out, self.w_h1,
             self.b_h1, self.w_h2, self.b_h2, self.mol, self.temperatures,
             np.float32(LOG_SCALE_MIN), self.decode, forced, teacher, logits, self.record, out, self.lpc, coeffs,
             self.hist, self.exc, self.emb_p, self.emb_e, self.w_lpc, self.mu)
        inverse = self.inverse
        return torch.from_numpy(out[inverse]), (torch.from_numpy(logits[inverse]) if self.record else None)


def _f32(t) -> np.ndarray:
    """A tensor (or array) -> a C-contiguous float32 numpy array, as the kernel takes them."""
    if isinstance(t, torch.Tensor):
        t = t.detach().float().cpu().numpy()
    return np.ascontiguousarray(t, dtype=np.float32)


@contextlib.contextmanager
def _kernel_threads():
    """Around the kernel: BLAS held to one thread (each Numba thread already owns a core, and
    OpenBLAS threads spinning beside them slow a batch down several times), and torch's thread
    count put back afterwards: Numba's OpenMP layer sets the process's OpenMP thread count to its
    own (every core), which silently gave torch a second thread in a training process started with
    OMP_NUM_THREADS=1 (the vocoder validates with this sampler) and starved the process beside it."""
    torch_threads = torch.get_num_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a transitive dependency (librosa -> scikit-learn); without it, run as is
        threadpool_limits = None
    try:
        with threadpool_limits(limits=1, user_api="blas") if threadpool_limits else contextlib.nullcontext():
            yield
    finally:
        torch.set_num_threads(torch_threads)


def generate_fast(model: WaveNet, mel: torch.Tensor, lengths: torch.Tensor, *, temperature: Temperature = 1.0,
                  seed: Optional[int] = None, progress: bool = False, threads: Optional[int] = None) -> np.ndarray:
    """mel (B, n_mels, F), lengths (B,) frames -> audio (B, F * hop) float32 numpy, zero past each
    length (s' for an LPC model: ``WaveNet.generate`` also de-emphasises)."""
    return FastSampler(model, mel, lengths, temperature=temperature, seed=seed, threads=threads).run(progress).numpy()
