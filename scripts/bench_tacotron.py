"""Throughput of our Tacotron against torchaudio.models.Tacotron2 at the same sizes, in one run.

    python3 scripts/bench_tacotron.py --device cpu --threads 1 --steps 2 --frames 200 --infer-frames 100
    python3 scripts/bench_tacotron.py --device cuda --steps 20

Both models get the same batch (random symbols, sorted by length because torchaudio's encoder
needs that, and random log mels), the same loss (MSE before and after the postnet + stop BCE) and
Adam. Sizes: embedding 512, encoder 512, attention 128, decoder LSTMs 1024, prenet 256,
postnet 512. torchaudio has no reduction factor, so the fair match is ours at r=1; ours at r=2 is
reported beside it. Inference runs every sentence to --infer-frames frames (the stop tokens are
silenced), so both decode the same number of frames. Models are timed round-robin and medians
reported, so load from other processes hits all of them alike. Figures are printed; the last line
is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from tts.config import TacotronConfig
from tts.models.tacotron import Tacotron

N_MELS = 80


def make_batch(args, device):
    g = torch.Generator().manual_seed(0)
    text_lengths = torch.linspace(args.text_len, int(args.text_len * 0.8), args.batch).long()
    mel_lengths = torch.linspace(args.frames, int(args.frames * 0.8), args.batch).long()
    text = torch.randint(1, args.symbols, (args.batch, args.text_len), generator=g)
    text = text.masked_fill(torch.arange(args.text_len)[None] >= text_lengths[:, None], 0)
    mel = torch.randn(args.batch, N_MELS, args.frames, generator=g) - 4.0
    return [x.to(device) for x in (text, text_lengths, mel, mel_lengths)]


def ours(reduction: int, args) -> torch.nn.Module:
    config = TacotronConfig(embedding_dim=512, encoder_dim=512, attention_dim=128, prenet_dim=256, decoder_dim=1024,
                            decoder_layers=2, postnet_dim=512, reduction=reduction)
    model = Tacotron(config, n_symbols=args.symbols, n_mels=N_MELS, pad_id=0)
    with torch.no_grad():  # silence the stop token so inference decodes exactly --infer-frames frames
        model.decoder.stop_proj.weight.zero_()
        model.decoder.stop_proj.bias.fill_(-1e4)
    return model


def peer(args) -> torch.nn.Module:
    from torchaudio.models import Tacotron2

    model = Tacotron2(n_mels=N_MELS, n_symbol=args.symbols, n_frames_per_step=1, symbol_embedding_dim=512,
                      encoder_embedding_dim=512, decoder_rnn_dim=1024, attention_rnn_dim=1024,
                      attention_hidden_dim=128, prenet_dim=256, postnet_embedding_dim=512,
                      decoder_max_step=args.infer_frames)
    with torch.no_grad():
        model.decoder.gate_layer.weight.zero_()
        model.decoder.gate_layer.bias.fill_(-1e4)
    return model


def forward(name: str, model, text, text_lengths, mel, mel_lengths):
    """-> (mel, mel_post, stop_logits (B, T))."""
    if name == "peer":
        mel_out, post, gate, _ = model(text, text_lengths, mel, mel_lengths)
        return mel_out, post, gate
    out = model(text, text_lengths, mel, mel_lengths)
    return out["mel"], out["mel_post"], out["stop_logits"]


def infer(name: str, model, text, text_lengths, frames: int) -> int:
    """Runs inference; returns the number of frames decoded over the batch."""
    if name == "peer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Reached max decoder steps": intended here
            _, lengths, _ = model.infer(text, text_lengths)
    else:
        lengths = model.infer(text, text_lengths, generator=torch.Generator(device=text.device).manual_seed(0),
                              max_frames=frames)["mel_lengths"]
    return int(lengths.sum())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bench(models: dict, batch, args, device) -> dict:
    """Round-robin: each repetition times one training step (then one inference run) of every model
    in turn, so load from other processes drifts over all of them alike; medians are reported."""
    text, text_lengths, mel, mel_lengths = batch
    stop_target = (torch.arange(mel.shape[2], device=device)[None] >= mel_lengths[:, None] - 1).float()
    steps = {}
    for name, model in models.items():
        model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def train_step(name=name, model=model, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            mel_out, post, stop = forward(name, model, text, text_lengths, mel, mel_lengths)
            loss = F.mse_loss(mel_out, mel) + F.mse_loss(post, mel) + F.binary_cross_entropy_with_logits(stop, stop_target)
            loss.backward()
            optimizer.step()

        steps[name] = train_step
    train_times = {name: [] for name in models}
    for rep in range(args.warmup + args.steps):
        for name, step in steps.items():
            seconds = timed(step, device)
            if rep >= args.warmup:
                train_times[name].append(seconds)
    frames, infer_times = {}, {name: [] for name in models}
    with torch.no_grad():
        for name, model in models.items():
            model.eval()
        for rep in range(args.warmup + args.infer_runs):
            for name, model in models.items():
                result = {}
                seconds = timed(lambda: result.update(n=infer(name, model, text, text_lengths, args.infer_frames)),
                                device)
                frames[name] = result["n"]
                if rep >= args.warmup:
                    infer_times[name].append(seconds)
    results = {}
    for name, model in models.items():
        train_s, infer_s = statistics.median(train_times[name]), statistics.median(infer_times[name])
        results[name] = {"params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                         "train_steps_per_s": 1.0 / train_s, "infer_frames_per_s": frames[name] / infer_s}
        print(f"{name:8s} params {results[name]['params_M']:6.2f}M  train {1.0 / train_s:8.3f} steps/s "
              f"({train_s * 1000:8.1f} ms/step, median of {len(train_times[name])})  "
              f"infer {frames[name] / infer_s:9.1f} frames/s ({frames[name]} frames in {infer_s:.2f} s, "
              f"median of {len(infer_times[name])})", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps (and inference runs) first")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--text-len", type=int, default=100, help="symbols in the longest sentence")
    parser.add_argument("--frames", type=int, default=400, help="mel frames in the longest training target")
    parser.add_argument("--infer-frames", type=int, default=400, help="frames each sentence decodes at inference")
    parser.add_argument("--infer-runs", type=int, default=3, help="timed inference runs per model (median reported)")
    parser.add_argument("--symbols", type=int, default=148)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (1 is steadier when other processes share the cores)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    device = torch.device(args.device)
    torch.manual_seed(0)
    batch = make_batch(args, device)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"batch {args.batch} x {args.text_len} symbols x {args.frames} frames, "
          f"{args.steps} timed steps, {args.infer_frames} inference frames per sentence", flush=True)
    results = bench({"ours_r1": ours(1, args), "ours_r2": ours(2, args), "peer": peer(args)}, batch, args, device)
    summary = {"device": args.device, "threads": torch.get_num_threads(), "batch": args.batch, "text_len": args.text_len, "frames": args.frames,
               "infer_frames": args.infer_frames, "steps": args.steps, "peer": "torchaudio.models.Tacotron2"}
    for metric in ("train_steps_per_s", "infer_frames_per_s"):
        summary[metric] = {name: round(r[metric], 4) for name, r in results.items()}
        summary[metric]["ratio_r1_vs_peer"] = round(results["ours_r1"][metric] / results["peer"][metric], 3)
        summary[metric]["ratio_r2_vs_peer"] = round(results["ours_r2"][metric] / results["peer"][metric], 3)
    summary["params_M"] = {name: r["params_M"] for name, r in results.items()}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
