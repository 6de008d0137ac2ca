"""Benchmark WaveNet sampling: our fast CPU kernel or Triton GPU kernel, our torch incremental path
(CUDA-graph replayed on a GPU), and r9y9's wavenet_vocoder (PyPI ``wavenet-vocoder``, its
``incremental_forward``) at the same sizes.

    python3 scripts/bench_wavenet.py --device cpu --batch 1 --seconds 1
    python3 scripts/bench_wavenet.py --device cuda --batch 64 [--backend torch]

A randomly initialised model: 20 layers (2 stacks), 64 residual, 128 gate, 64 skip channels,
80 mels, hop 256, 22050 Hz, mu-law output. Figures are aggregate samples per second over the
batch (wall clock, after a warm-up call). The slow paths run for shorter stretches
(--torch-seconds, --peer-seconds) and their rates are extrapolated from what they generated.
Prints a few lines of figures; the last line is a JSON object.

The peer is installed with ``pip install wavenet-vocoder --no-deps`` (it must not bring in another
torch). Its sampler draws with ``np.random.choice`` on float32 probabilities, which numpy may
reject as not summing to one; the shim below renormalises in float64 (in this script, not in
site-packages). It samples one utterance at a time, so its figure is always for batch 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import types
import warnings

import numpy as np
import torch

from tts.config import AudioConfig, WaveNetConfig
from tts.models.wavenet import WaveNet

SAMPLE_RATE, HOP, N_MELS = 22050, 256, 80
SIZES = dict(layers=20, stacks=2, kernel_size=2, residual_channels=64, gate_channels=128, skip_channels=64,
             upsample_scales=(4, 4, 4, 4), output="mulaw")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench_ours(model: WaveNet, mel: torch.Tensor, backend: str, repeats: int = 1) -> tuple[float, list[float]]:
    """-> (first call seconds on 1 frame: JIT compile or cache load, CUDA graph capture;
    samples/s of each repeat)."""
    first = _timed(lambda: model.generate(mel[:, :, :1], seed=0, backend=backend), mel.device)
    samples = mel.shape[0] * mel.shape[2] * HOP
    return first, [samples / _timed(lambda: model.generate(mel, seed=1, backend=backend), mel.device)
                   for _ in range(repeats)]


def _peer_numpy_shim(rng: np.random.Generator) -> types.SimpleNamespace:
    """The peer module's ``np`` with a ``random.choice`` that renormalises p in float64."""
    def choice(a, p=None, **kwargs):
        p = np.asarray(p, dtype=np.float64)
        return rng.choice(a, p=p / p.sum(), **kwargs)

    shim = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    shim.random = types.SimpleNamespace(choice=choice)
    return shim


def bench_peer(device: torch.device, seconds: float) -> tuple[float | None, str]:
    """r9y9's WaveNet at our sizes, batch 1, ``incremental_forward``. -> (samples/s or None, note)."""
    try:
        import wavenet_vocoder
        from wavenet_vocoder import wavenet as peer_module
    except ImportError as err:
        return None, f"wavenet_vocoder not importable ({err}); pip install wavenet-vocoder --no-deps"
    try:
        peer_module.np = _peer_numpy_shim(np.random.default_rng(0))
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*weight_norm.*")
        torch.manual_seed(0)
        peer = peer_module.WaveNet(out_channels=256, layers=SIZES["layers"], stacks=SIZES["stacks"],
                                   residual_channels=SIZES["residual_channels"], gate_channels=SIZES["gate_channels"],
                                   skip_out_channels=SIZES["skip_channels"], kernel_size=SIZES["kernel_size"],
                                   dropout=0.0, cin_channels=N_MELS, gin_channels=-1, weight_normalization=True,
                                   upsample_conditional_features=True, upsample_scales=list(SIZES["upsample_scales"]),
                                   freq_axis_kernel_size=3, scalar_input=False)
        peer.make_generation_fast_()  # removes weight norm, as its own synthesis script does
        peer = peer.to(device).eval()
        frames = max(1, math.ceil(seconds * SAMPLE_RATE / HOP))
        c = torch.randn(1, N_MELS, frames, device=device)
        with torch.no_grad():
            peer.incremental_forward(c=c[:, :, :1], T=HOP, softmax=True, quantize=True)  # warm-up
            elapsed = _timed(lambda: peer.incremental_forward(c=c, T=frames * HOP, softmax=True, quantize=True),
                             device)
        return frames * HOP / elapsed, f"wavenet-vocoder {wavenet_vocoder.__version__}, batch 1, {frames * HOP} samples"
    except Exception as err:  # report why, keep our figures
        return None, f"wavenet_vocoder failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backend", choices=("fast", "torch", "triton"), default=None,
                        help="our sampler for the main figure (default: fast on cpu, triton on cuda)")
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per utterance for the main figure")
    parser.add_argument("--torch-seconds", type=float, default=0.05,
                        help="audio per utterance for the torch path on CPU")
    parser.add_argument("--peer-seconds", type=float, default=0.1, help="audio for the peer (batch 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the fast kernel and torch (default: all; batch 1 uses one anyway)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our main path (median and best reported)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--excitation", choices=("none", "lpc"), default="none",
                        help="lpc: the excitation WaveNet (per-sample linear prediction beside the network)")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    if args.threads:
        import numba

        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(**SIZES, excitation=args.excitation), n_mels=N_MELS, hop_length=HOP,
                    audio=AudioConfig(sample_rate=SAMPLE_RATE, hop_length=HOP, n_mels=N_MELS)).to(device).eval()
    frames = max(1, math.ceil(args.seconds * SAMPLE_RATE / HOP))
    mel = torch.randn(args.batch, N_MELS, frames, device=device) - 4.0
    cpus = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{cpus} CPUs'}), "
          f"batch {args.batch}, {frames * HOP} samples per utterance, load average {load}")
    print(f"model: {SIZES['layers']} layers, {SIZES['residual_channels']} residual / {SIZES['gate_channels']} gate / "
          f"{SIZES['skip_channels']} skip channels, {N_MELS} mels, receptive field {model.receptive_field}")

    result = {"device": str(device), "batch": args.batch, "excitation": args.excitation,
              "seconds": frames * HOP / SAMPLE_RATE, "cpus": cpus,
              "load_average": load}
    backend = args.backend or ("fast" if device.type == "cpu" else "triton")
    first, rates = bench_ours(model, mel, backend, args.repeats)
    rate = statistics.median(rates)
    print(f"{backend}: first call {first:.2f} s (JIT compile or cache load, CUDA graph capture); "
          f"{', '.join(f'{r:,.0f}' for r in rates)} samples/s; median {rate:,.0f} = "
          f"{rate / SAMPLE_RATE:.2f}x real time")
    result.update(backend=backend, samples_per_s=rate, samples_per_s_best=max(rates), first_call_s=first)
    if backend == "torch":
        torch_rate = rate
    else:  # on the CPU, torch is slow: a shorter stretch
        t_seconds = args.torch_seconds if device.type == "cpu" else args.seconds
        t_frames = max(1, math.ceil(t_seconds * SAMPLE_RATE / HOP))
        torch_rate = bench_ours(model, mel[:, :, :t_frames], "torch")[1][0]
    print(f"torch incremental: {torch_rate:,.0f} samples/s")
    result["torch_samples_per_s"] = torch_rate

    if args.no_peer:
        peer_rate, note = None, "skipped (--no-peer)"
    else:
        peer_rate, note = bench_peer(device, args.peer_seconds)
    print(f"peer r9y9 wavenet_vocoder incremental_forward: "
          f"{'n/a' if peer_rate is None else f'{peer_rate:,.0f} samples/s'} ({note})")
    result.update(peer_samples_per_s=peer_rate, peer_batch=1, peer_note=note)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
