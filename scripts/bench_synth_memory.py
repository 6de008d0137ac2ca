"""Peak memory of `tts synth` against the length of the text: one fresh `tts synth` process per size.

    python3 scripts/bench_synth_memory.py --chars 1000 100000

Each text is made of random sentences of 6 to 18 words (a fixed vocabulary, seeded), written to a
file and spoken with `tts synth --text-file FILE -o OUT.wav -q` (the shipped voice unless --voice;
its card's vocoder unless --vocoder). The peak RSS is the child's ru_maxrss as the kernel counts
it (what /usr/bin/time -v reports as "Maximum resident set size"); wall time includes starting
Python and loading the voice. One line per text, then the ratio of the last peak to the first;
last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no will more time people could other "
         "year about river morning window garden letter village mountain history station teacher question evening "
         "summer winter market quietly carefully certainly yesterday tomorrow together seven eleven twenty hundred "
         "beautiful difficult important").split()


def make_text(chars: int, seed: int) -> str:
    """Random sentences of 6 to 18 words, cut to ``chars`` characters."""
    rng = random.Random(seed)
    sentences, size = [], 0
    while size < chars:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18)))
        sentence = words[0].upper() + words[1:] + rng.choice(".?!.")
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)[:chars].rstrip()


def measure(text_file: Path, out: Path, args: argparse.Namespace) -> dict:
    """One `tts synth` process -> wall seconds, peak RSS (MB), exit status."""
    command = [sys.executable, "-m", "tts.cli", "synth", "--text-file", str(text_file), "-o", str(out), "-q"]
    if args.voice:
        command += ["--voice", args.voice]
    if args.vocoder:
        command += ["--vocoder", args.vocoder]
    began = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": round(time.perf_counter() - began, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "rc": child.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, nargs="+", default=[1000, 100000], help="text sizes, in characters")
    parser.add_argument("--voice", default=None, help="voice directory (default: the shipped voice)")
    parser.add_argument("--vocoder", choices=("auto", "wavenet", "griffinlim"), default=None,
                        help="default: the voice card's choice")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sentences")
    parser.add_argument("--keep", type=Path, default=None, help="keep the texts and wavs in this directory")
    args = parser.parse_args()
    if any(n < 1 for n in args.chars):
        parser.error("--chars takes positive sizes")

    import soundfile as sf

    from tts.synth import split_text

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        runs = []
        for chars in args.chars:
            text = make_text(chars, args.seed)
            text_file, out = folder / f"text_{chars}.txt", folder / f"out_{chars}.wav"
            text_file.write_text(text + "\n", encoding="utf-8")
            run = {"chars": len(text), "chunks": len(split_text(text)), **measure(text_file, out, args)}
            if run["rc"] == 0:
                run["audio_s"] = round(sf.info(str(out)).duration, 1)
            runs.append(run)
            print(f"{run['chars']} characters, {run['chunks']} chunks: {run.get('audio_s', '?')} s of audio, "
                  f"wall {run['wall_s']} s, peak RSS {run['peak_rss_mb']} MB"
                  + (f" (exit status {run['rc']})" if run["rc"] else ""), file=sys.stderr, flush=True)
    ratio = round(runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"], 3) if len(runs) > 1 else None
    if ratio is not None:
        print(f"peak RSS of the last over the first: {ratio}x", file=sys.stderr)
    print(json.dumps({"runs": runs, "peak_ratio": ratio, "cpu": os.cpu_count(),
                      "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}))
    return 0 if all(run["rc"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
