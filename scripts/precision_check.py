"""Train the same steps in fp32 eager and in the default (bf16, compiled where measured faster) and
compare their losses: does the faster training learn as well?

    python3 scripts/precision_check.py --stage vocoder --corpus data/teacher --work ~/tts-work/precision
    python3 scripts/precision_check.py --stage acoustic --corpus data/teacher --work ~/tts-work/precision

Each variant is a real `tts train recipe=teacher` run from scratch with the same seed (so the same
batches in the same order), in WORK/STAGE-VARIANT; rerunning the command resumes or reuses them.
Reported per variant: the mean training loss over the last --window logged steps, and the
validation loss at the last step (the same held-out batches for both; the vocoder's through its
weight average). The ratios are default / fp32. Progress goes to stderr; last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = {
    "fp32": ["trainer.precision=32-true", "trainer.compile=false"],
    "default": [],  # the recipe's bf16-mixed and trainer.compile=auto
}


def scalars(stage_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of one TensorBoard scalar of a stage's run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(stage_dir / "logs"), size_guidance={"scalars": 0})
    events.Reload()
    if tag not in events.Tags().get("scalars", []):
        return []
    return [(event.step, event.value) for event in events.Scalars(tag)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("acoustic", "vocoder"), required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/teacher"))
    parser.add_argument("--work", type=Path, required=True, help="the run directories go here")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--window", type=int, default=10, help="logged training losses averaged at the end")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    parser.add_argument("overrides", nargs="*", help="more key=value settings for both runs")
    args = parser.parse_args()

    figures = {}
    for name, settings in VARIANTS.items():
        run_dir = args.work / f"{args.stage}-{name}"
        cmd = [sys.executable, "-m", "tts.cli", "train", "recipe=teacher", f"stage={args.stage}",
               f"data.root={args.corpus}", f"run_dir={run_dir}", "trainer.accelerator=cpu",
               f"trainer.max_steps={args.steps}", f"trainer.val_every_steps={args.steps}",
               "trainer.log_every_steps=10", f"trainer.checkpoint_every_steps={min(100, args.steps)}",
               *settings, *args.overrides]
        print(f"{name}: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
        began = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
        stage_dir = run_dir / args.stage
        train = scalars(stage_dir, "train/loss")
        val = scalars(stage_dir, "val/loss")
        if not train or not val:
            raise SystemExit(f"{stage_dir}: no train/loss or val/loss logged")
        tail = [value for _, value in train[-args.window:]]
        figures[name] = {"train_loss_end": round(sum(tail) / len(tail), 4), "val_loss": round(val[-1][1], 4),
                         "val_step": val[-1][0], "wall_s_this_call": round(time.perf_counter() - began, 1)}
        print(f"{name}: {figures[name]}", file=sys.stderr, flush=True)
    ratios = {key: round(figures["default"][key] / figures["fp32"][key], 4) for key in ("train_loss_end", "val_loss")}
    print(json.dumps({"stage": args.stage, "steps": args.steps, **figures, "default_over_fp32": ratios}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
