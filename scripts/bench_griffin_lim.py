"""CPU time of one Griffin-Lim call (tts.audio.griffin_lim, 32 iterations) on a voice's own mels,
one sentence at a time, as the speech server's vocoder threads run it.

    python3 scripts/bench_griffin_lim.py                          # the shipped voice, one thread
    PYTHONPATH=OLD_CHECKOUT python3 scripts/bench_griffin_lim.py  # the same for other code

The Tacotron makes the mels once (seed 0); then each sentence is vocoded --repeats times in turn
and the least CPU time is kept (on a shared machine the least disturbed). Prints one line per
sentence; the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

SENTENCES = (
    "Hello.",
    "Please return them within three weeks.",
    "The library opens at nine in the morning, and visitors may borrow up to five books at a time.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", help="voice directory (default: the shipped voice)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the server uses 1)")
    args = parser.parse_args()

    import torch

    import tts.audio
    from tts.voice import Voice

    torch.set_num_threads(args.threads)
    voice = Voice.load(args.voice, device="cpu", vocoder=False)
    inverse = tts.audio.mel_inverse(voice.audio, torch.device("cpu"))
    mels = [out["mel"] for out in voice.mels_from_ids([voice.encode(text) for text in SENTENCES], seed=0)]

    def vocode(mel: torch.Tensor) -> None:
        tts.audio.griffin_lim(mel, voice.audio, generator=torch.Generator().manual_seed(0), inverse=inverse)

    for mel in mels:
        vocode(mel)  # first-call allocations
    best = [float("inf")] * len(mels)
    for _ in range(args.repeats):
        for i, mel in enumerate(mels):
            began = time.process_time()
            vocode(mel)
            best[i] = min(best[i], time.process_time() - began)
    rows = []
    for text, mel, cpu in zip(SENTENCES, mels, best):
        audio_s = mel.shape[1] * voice.audio.hop_length / voice.audio.sample_rate
        rows.append({"words": len(text.split()), "frames": mel.shape[1], "cpu_ms": round(cpu * 1e3, 1),
                     "cpu_s_per_audio_s": round(cpu / audio_s, 4)})
        print(f"{mel.shape[1]:4d} frames ({audio_s:.2f} s of audio): {cpu * 1e3:.1f} ms CPU")
    print(json.dumps({"code": tts.audio.__file__, "machine": f"{platform.machine()}, torch threads {args.threads}",
                      "torch": torch.__version__, "sentences": rows}))


if __name__ == "__main__":
    main()
