"""Throughput of `tts batch` (tts.batch.run_batch, the code the command runs) by batch size, in
seconds of audio written per second of wall clock.

    python3 scripts/bench_batch.py                                   # untrained tiny-recipe voice
    python3 scripts/bench_batch.py --recipe ljspeech --items 16      # untrained full-size voice
    python3 scripts/bench_batch.py --voice runs/lj --vocoders wavenet --batch-sizes 1 8 32

Without --voice the voice is built untrained from --recipe (tts.voice.write_untrained_voice) with
its stop threshold out of reach, so every sentence lasts exactly its length bound:
--frames-per-symbol mel frames per input symbol, about the pace of real speech at 6. Such a voice
costs what a trained one of the same size costs per second of audio, but it does not speak.

Each run writes --items sentences into a fresh directory; one warm-up batch per vocoder comes
first (Numba kernel load, first-call allocations). Figures include everything `tts batch` does
after loading the voice: text frontend, Tacotron, vocoder, wav writes and the manifest.
With --repeats, each setting runs that many times and the best and median are reported (on a
shared machine the best is the least disturbed). Prints one line per setting; the last line is a
JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path


def _policy_argument(argv: list) -> "str | None":
    """The value of --omp-wait-policy, read before argparse runs: it must reach the environment
    before torch loads."""
    for n, arg in enumerate(argv):
        if arg.startswith("--omp-wait-policy="):
            return arg.split("=", 1)[1]
        if arg == "--omp-wait-policy" and n + 1 < len(argv):
            return argv[n + 1]
    return None


# PASSIVE as `tts batch` sets it (tts/cli.py): OpenMP threads spinning in torch and in the Numba
# WaveNet kernel otherwise starve each other (docs/synthesis.md).
os.environ["OMP_WAIT_POLICY"] = _policy_argument(sys.argv) or os.environ.get("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from tts.batch import BatchItem, BatchSettings, run_batch
from tts.config import load_recipe
from tts.voice import Voice, write_untrained_voice

SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "On March 3, 1999, the committee met at 10:30 am to review 42 proposals.",
    "Dr. Smith paid $3.50 for a coffee, which was, as she said, a bargain.",
    "Small children came to see the show, and stayed until the very end of it.",
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow.",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, help="a trained voice (default: an untrained one from --recipe)")
    parser.add_argument("--recipe", default="tiny", help="recipe of the untrained voice (default tiny)")
    parser.add_argument("--frames-per-symbol", type=float, default=6.0, help="length bound of the untrained voice")
    parser.add_argument("--vocoders", nargs="+", default=["griffinlim", "wavenet"], choices=["griffinlim", "wavenet"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--items", type=int, default=24, help="sentences per run (cycled from a built-in list)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per setting; the best and the median are kept")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE"],
                        help="OMP_WAIT_POLICY for this run (default: the environment's, else PASSIVE)")
    args = parser.parse_args()

    items = [BatchItem(f"{n:03d}", SENTENCES[n % len(SENTENCES)], n + 1) for n in range(args.items)]
    with tempfile.TemporaryDirectory() as tmp:
        voice_dir = args.voice
        if voice_dir is None:
            recipe = load_recipe(args.recipe, ["data.root=unused", "acoustic.stop_threshold=1.0",
                                               f"acoustic.max_frames_per_symbol={args.frames_per_symbol}"])
            voice_dir = write_untrained_voice(Path(tmp) / "voice", recipe)
        voice = Voice.load(voice_dir, device=args.device)
        runs = []
        for vocoder in args.vocoders:
            warm = BatchSettings(vocoder=vocoder, seed=0, batch_size=2, progress=False)
            run_batch(voice, items[:2], Path(tempfile.mkdtemp(dir=tmp)), warm)
            for batch_size in args.batch_sizes:
                settings = BatchSettings(vocoder=vocoder, seed=0, batch_size=batch_size, progress=False)
                walls = []
                for _ in range(args.repeats):
                    counts = run_batch(voice, items, Path(tempfile.mkdtemp(dir=tmp)), settings)
                    if counts["failed"]:
                        raise SystemExit(f"{counts['failed']} items failed with {vocoder}, batch size {batch_size}")
                    walls.append(counts["elapsed"])
                audio = counts["seconds"]
                run = {"vocoder": vocoder, "batch_size": batch_size, "items": counts["done"],
                       "audio_s": round(audio, 2), "wall_s": [round(w, 2) for w in walls],
                       "audio_s_per_s_best": round(audio / min(walls), 3),
                       "audio_s_per_s_median": round(audio / statistics.median(walls), 3)}
                runs.append(run)
                print(f"{vocoder:>10} batch {batch_size:>3}: {audio:7.1f} s of audio in {min(walls):6.1f} s at best"
                      f" = {run['audio_s_per_s_best']:.2f} s of audio per second"
                      f" (median {run['audio_s_per_s_median']:.2f})", file=sys.stderr, flush=True)
    result = {
        "voice": str(args.voice) if args.voice else f"untrained {args.recipe} recipe, "
                                                     f"{args.frames_per_symbol} frames per symbol",
        "device": args.device,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}",
        "torch": torch.__version__,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "runs": runs,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
