"""Training-step throughput of one stage in every precision x compile combination, in one run.

    python3 scripts/bench_train.py --stage vocoder --device cpu
    python3 scripts/bench_train.py --stage acoustic --device cpu --steps 4
    python3 scripts/bench_train.py --stage vocoder --device cuda --batch 32

Each variant builds the stage's real training system (tts.train.acoustic.TacotronSystem or
tts.train.vocoder.WaveNetSystem) at the recipe's sizes, on random data of the recipe's batch shape,
and runs what the Lightning trainer runs per step: forward and loss under the precision's autocast,
backward, gradient clipping, Adam. ``compile`` is the system's own ``compile_model()``, the switch
``trainer.compile`` turns on. The first ``--warmup`` steps (compilation included) are timed apart
as ``first_steps_s``; the variants are then timed round-robin, one step each in turn, and medians
reported, so load from other processes hits all of them alike. fp32 eager is the baseline; the last
line is JSON with samples (vocoder) or mel frames (acoustic) per second and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import time

import torch

from tts.config import load_recipe
from tts.text import SymbolTable

VARIANTS = [("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]


def _autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def acoustic_case(recipe, args, device):
    from tts.train.acoustic import TacotronSystem

    symbols = SymbolTable.default().to_dict()
    system = TacotronSystem(audio=recipe.audio, model=recipe.acoustic, train=recipe.acoustic_train, symbols=symbols)
    g = torch.Generator().manual_seed(0)
    B, L, T = args.batch or recipe.acoustic_train.batch_size, args.text_len, args.frames
    text_lengths = torch.linspace(L, int(L * 0.7), B).long()
    mel_lengths = torch.linspace(T, int(T * 0.7), B).long()
    text = torch.randint(1, len(symbols["symbols"]), (B, L), generator=g)
    text = text.masked_fill(torch.arange(L)[None] >= text_lengths[:, None], int(symbols["pad_id"]))
    mel = torch.randn(B, recipe.audio.n_mels, T, generator=g) - 4.0
    batch = {"text": text.to(device), "text_lengths": text_lengths.to(device), "mel": mel.to(device),
             "mel_lengths": mel_lengths.to(device)}

    def loss(system):
        return system.losses(batch, system(batch), step=0)["loss"]

    return system, loss, int(mel_lengths.sum()), "frames_per_s", recipe.acoustic_train.grad_clip, f"batch {B} x {L} symbols x {T} frames"


def vocoder_case(recipe, args, device):
    from tts.train.vocoder import WaveNetSystem

    system = WaveNetSystem(audio=recipe.audio, model=recipe.vocoder, train=recipe.vocoder_train)
    g = torch.Generator().manual_seed(0)
    B = args.batch or recipe.vocoder_train.batch_size
    S = recipe.vocoder_train.segment_frames
    audio = (torch.rand(B, S * recipe.audio.hop_length, generator=g) * 2 - 1) * 0.5
    mel = torch.randn(B, recipe.audio.n_mels, S, generator=g) - 4.0
    audio, mel = audio.to(device), mel.to(device)

    def loss(system):
        return system._loss(audio, mel)

    return system, loss, audio.numel(), "samples_per_s", recipe.vocoder_train.grad_clip, f"batch {B} x {audio.shape[1]} samples"


class Variant:
    def __init__(self, make, precision: str, compiled: bool, args, device):
        torch.manual_seed(0)
        self.name = f"{precision}{'+compile' if compiled else ''}"
        self.precision, self.device = precision, device
        self.system, self.loss, self.units, self.unit_name, self.clip, self.shape = make(args, device)
        self.system.to(device).train()
        if compiled:
            self.system.compile_model()
        self.optimizer = torch.optim.Adam(self.system.parameters(), lr=1e-4)
        self.times: list[float] = []
        self.losses: list[float] = []

    def step(self) -> float:
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        with _autocast(self.precision, self.device):
            loss = self.loss(self.system)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.system.parameters(), self.clip)
        self.optimizer.step()
        sync()
        self.losses.append(float(loss.detach()))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("acoustic", "vocoder"), required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipe", default="teacher", help="sizes come from this recipe (default teacher)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 10 vocoder, 4 acoustic)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps per variant (compilation)")
    parser.add_argument("--batch", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--text-len", type=int, default=80, help="acoustic: symbols in the longest sentence")
    parser.add_argument("--frames", type=int, default=450, help="acoustic: mel frames in the longest sentence")
    parser.add_argument("--variants", nargs="+", default=[f"{p}{'+compile' if c else ''}" for p, c in VARIANTS],
                        help="subset of: fp32 bf16 fp32+compile bf16+compile (fp32 first: it is the baseline)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="recipe overrides, as tts train takes them (e.g. vocoder.residual_channels=64)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    recipe = load_recipe(args.recipe, list(args.overrides) + ([] if device.type == "cpu" else ["trainer.accelerator=gpu"]))
    steps = args.steps or (10 if args.stage == "vocoder" else 4)
    case = acoustic_case if args.stage == "acoustic" else vocoder_case

    def make(args, device):
        return case(recipe, args, device)

    variants = []
    for name in args.variants:
        precision, _, compiled = name.partition("+")
        v = Variant(make, precision, bool(compiled), args, device)
        start = time.perf_counter()
        for _ in range(args.warmup):
            v.step()
        v.first_steps_s = time.perf_counter() - start
        print(f"{v.name:14s} first {args.warmup} steps {v.first_steps_s:7.1f} s (compilation included)", flush=True)
        variants.append(v)
    for _ in range(steps):
        for v in variants:
            v.times.append(v.step())
    base = statistics.median(variants[0].times)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads")
    print(f"{args.stage} at {recipe.name} sizes, {variants[0].shape}, {machine}, torch {torch.__version__}")
    results = {}
    for v in variants:
        median = statistics.median(v.times)
        rate = v.units / median
        results[v.name] = {"step_s": round(median, 4), v.unit_name: round(rate, 1), "ratio": round(base / median, 3),
                           "first_steps_s": round(v.first_steps_s, 1), "last_loss": round(v.losses[-1], 4)}
        print(f"{v.name:14s} {median:8.3f} s/step  {rate:10.0f} {v.unit_name.replace('_per_s', '/s')}  "
              f"x{base / median:5.2f}  (loss {v.losses[-1]:.3f})")
    print(json.dumps({"stage": args.stage, "device": args.device, "recipe": recipe.name, "overrides": args.overrides,
                      "shape": variants[0].shape,
                      "machine": machine, "steps": steps, "variants": results}))


if __name__ == "__main__":
    main()
