"""SIGKILL `tts train` at random moments and check that every restart resumes at the right step.

    python3 scripts/kill_test_train.py --kills 5 --seed 0

A small acoustic model (the tiny recipe, widened so a checkpoint is tens of MB and its write takes
long enough to be hit) trains on a synthetic corpus with a checkpoint every step. The run is killed
with SIGKILL (no handler runs, as with the OOM killer or a lost node) at random moments; one kill
is aimed at a checkpoint write, by watching for its temporary file. After each kill the script
notes the step of the newest intact checkpoint and the stale temporary files, starts the same
command again and checks that it says "resuming ... at step N" for that N and that the stale
files are gone. A last run trains to the end. Progress goes to stderr; the last line is JSON:
{kills, during_write, resumed_right, stale_left, final_step, seconds}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDE = ["acoustic.embedding_dim=128", "acoustic.encoder_dim=128", "acoustic.decoder_dim=512",
        "acoustic.prenet_dim=128", "acoustic.postnet_dim=128"]


def make_corpus(root: Path, n: int = 8, sample_rate: int = 22050) -> Path:
    import soundfile as sf

    (root / "wavs").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        t = np.arange(int(sample_rate * 0.5)) / sample_rate
        wav = 0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(root / "wavs" / f"u{i}.wav", wav.astype(np.float32), sample_rate, subtype="PCM_16")
        rows.append(f"u{i}|This is sentence number {i}.|This is sentence number {i}.")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def intact_step(checkpoints: Path) -> int:
    """What the next start must resume from: the newest intact checkpoint's step (0: none)."""
    from tts.train.checkpoints import BEST, LAST, PREVIOUS, checkpoint_step

    steps = []
    for name in (LAST, PREVIOUS, BEST):
        try:
            steps.append(checkpoint_step(checkpoints / name))
        except (OSError, ValueError):
            pass
    return max(steps, default=0)


def stale(checkpoints: Path) -> list[Path]:
    return sorted(p for p in checkpoints.glob(".*") if p.name.endswith((".tmp", ".new"))) if checkpoints.is_dir() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=40, help="trainer.max_steps of the run")
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="kill_test_"))
    corpus = make_corpus(work / "corpus")
    run = work / "run"
    checkpoints = run / "acoustic" / "checkpoints"
    command = [sys.executable, "-m", "tts.cli", "train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run}",
               "stage=acoustic", "trainer.accelerator=cpu", f"trainer.max_steps={args.steps}",
               "trainer.checkpoint_every_steps=1", "trainer.val_every_steps=1000", *WIDE]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    began = time.monotonic()
    during_write = resumed_right = 0
    expected = None
    leftovers: list[Path] = []
    write_kill = rng.randrange(args.kills)
    stale_left = []
    for attempt in range(args.kills + 1):
        log_path = work / f"attempt{attempt}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        last_attempt = attempt == args.kills
        hit_write = False
        if not last_attempt:
            # Wait until training has passed its first checkpoint of this attempt, then kill: at a
            # random moment, or the instant a checkpoint's temporary file appears.
            start_step = expected or 0
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline and intact_step(checkpoints) <= start_step:
                time.sleep(0.2)
            if attempt == write_kill:
                while proc.poll() is None and time.monotonic() < deadline:
                    if stale(checkpoints):
                        hit_write = True
                        break
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0.0, 3.0))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        text = log_path.read_text(errors="replace")
        if attempt > 0:
            found = re.search(r"acoustic: resuming from \S+ at step (\d+)", text)
            step = int(found.group(1)) if found else None
            right = step == expected
            resumed_right += right
            gone = [p for p in leftovers if p.exists()]
            stale_left += [str(p) for p in gone]
            print(f"attempt {attempt}: resumed at step {step}, expected {expected} "
                  f"({'right' if right else 'WRONG'}); stale files from the kill removed: {not gone}",
                  file=sys.stderr, flush=True)
        if not last_attempt:
            during_write += hit_write and bool(stale(checkpoints))
            expected = intact_step(checkpoints)
            leftovers = stale(checkpoints)
            print(f"kill {attempt + 1}: {'during a checkpoint write' if hit_write else 'at a random moment'}; "
                  f"newest intact step {expected}; stale files {[p.name for p in leftovers]}", file=sys.stderr,
                  flush=True)
    final = intact_step(checkpoints)
    stale_left += [str(p) for p in stale(checkpoints)]
    print(json.dumps({"kills": args.kills, "during_write": during_write, "resumed_right": resumed_right,
                      "stale_left": stale_left, "final_step": final, "exit_status": proc.returncode,
                      "seconds": round(time.monotonic() - began, 1)}))
    return 0 if resumed_right == args.kills and not stale_left and final == args.steps and during_write else 1


if __name__ == "__main__":
    sys.exit(main())
