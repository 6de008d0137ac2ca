"""Fuzz the text frontend: random Unicode strings through Frontend().describe.

    python scripts/fuzz_frontend.py [--count 100000] [--seed 0] [--max-length 200]

Each string mixes pieces drawn from many Unicode planes, controls, right-to-left text, combining
marks, long punctuation and digit runs (ASCII and other scripts), number-like written forms and
plain words. A result is "ok" (words and phonemes), "text_error" (tts.text.TextError: nothing
speakable) or a crash (any other exception, counted by type, the first few printed). Prints the
counts, the slowest input and the time per character; the last line is JSON. The ten slowest
inputs are timed again at the end: a first use (anyascii loads a table per Unicode block) or a
stall of a shared machine is slow once, an input that is slow in itself is slow again.
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import logging
import random
import sys
import time


PIECES = [
    lambda r: "".join(chr(r.randrange(0x20, 0x7F)) for _ in range(r.randint(1, 12))),  # printable ASCII
    lambda r: "".join(chr(r.randrange(0, 0x20)) for _ in range(r.randint(1, 4))),  # controls
    lambda r: "".join(chr(r.randrange(0x80, 0x3000)) for _ in range(r.randint(1, 8))),  # Latin ... CJK symbols
    lambda r: "".join(chr(r.randrange(0x4E00, 0x9FFF)) for _ in range(r.randint(1, 6))),  # CJK
    lambda r: "".join(chr(r.randrange(0x0590, 0x08FF)) for _ in range(r.randint(1, 8))),  # Hebrew, Arabic (RTL)
    lambda r: "".join(chr(r.choice((0x200E, 0x200F, 0x202E, 0x2066, 0x200B, 0xFEFF))) for _ in range(r.randint(1, 3))),
    lambda r: "a" + "".join(chr(r.randrange(0x300, 0x370)) for _ in range(r.randint(1, 20))),  # combining marks
    lambda r: "".join(chr(r.randrange(0x1F300, 0x1FAFF)) for _ in range(r.randint(1, 4))),  # emoji
    lambda r: "".join(chr(r.randrange(0x10000, 0x10FFFF)) for _ in range(r.randint(1, 4))),  # astral planes
    lambda r: r.choice(".,;:!?-()[]'\"/$%&*#@") * r.randint(2, 60),  # punctuation runs
    lambda r: "".join(r.choice("0123456789") for _ in range(r.randint(1, 80))),  # digit runs
    lambda r: "".join(r.choice("٠١٢٣٤٥٦٧٨٩፩፪፫०१२३①②⑳²³") for _ in range(r.randint(1, 12))),  # other digits
    lambda r: r.choice(["$", "£", "€", "¥", "₩", "#", ""]) + str(r.randrange(10 ** r.randint(1, 40)))
              + r.choice(["", "th", "st", "%", "kg", "s", ".5", ",000", "-", ":30", " pm", "/7", "b"]),
    lambda r: r.choice(["Dr.", "St.", "Jan.", "e.g.", "U.S.", "http://x.com/a-b", "a@b.co", "1-2=5", "555-123-4567",
                        "3.14.15", "1:01:01", "July 25 2012", "Москва", "12KG", "p. 45", "2016/07/03", "IV"]),
    lambda r: r.choice(["the", "read", "wound", "bass", "record", "hello", "world", "live", "A", "I", "NASA"]),
]


def random_text(rng: random.Random, max_length: int) -> str:
    parts = []
    while sum(map(len, parts)) < rng.randint(1, max_length):
        parts.append(rng.choice(PIECES)(rng))
        parts.append(rng.choice(["", " ", "  ", "\n", "\t"]))
    return "".join(parts)[:max_length]


def _timed(frontend, text: str) -> float:
    start = time.perf_counter()
    try:
        frontend.describe(text)
    except Exception:  # noqa: BLE001 - counted in the main pass; here only the time matters
        pass
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=200)
    args = parser.parse_args(argv)

    from tts.text import Frontend, TextError

    logging.disable(logging.WARNING)  # every emoji would log its warning
    rng = random.Random(args.seed)
    frontend = Frontend()
    frontend.describe("Warm up: Dr. Smith paid $3.50 on Jan. 5 for a zorblatt.")  # loads every model
    counts: collections.Counter = collections.Counter()
    crashes: list[tuple[str, str]] = []
    slowest: list[tuple[float, str]] = []  # a heap of the ten slowest (seconds, text)
    total_time = total_chars = 0
    start = time.perf_counter()
    for _ in range(args.count):
        text = random_text(rng, args.max_length)
        t0 = time.perf_counter()
        try:
            frontend.describe(text)
            counts["ok"] += 1
        except TextError:
            counts["text_error"] += 1
        except Exception as error:  # noqa: BLE001 - counting every kind of crash is the point
            counts[f"crash:{type(error).__name__}"] += 1
            if len(crashes) < 5:
                crashes.append((text, f"{type(error).__name__}: {error}"))
        elapsed = time.perf_counter() - t0
        total_time += elapsed
        total_chars += len(text)
        if len(slowest) < 10:
            heapq.heappush(slowest, (elapsed, text))
        elif elapsed > slowest[0][0]:
            heapq.heapreplace(slowest, (elapsed, text))
    wall = time.perf_counter() - start
    first = max(slowest)
    again = max((_timed(frontend, text), text) for _, text in slowest)
    crash_count = sum(v for k, v in counts.items() if k.startswith("crash:"))
    for text, error in crashes:
        print(f"crash on {text!r}: {error}")
    print(f"{args.count} strings, {total_chars} characters in {wall:.1f} s: {dict(counts)}")
    print(f"slowest input {first[0] * 1000:.1f} ms ({len(first[1])} characters): {first[1]!r}")
    print(f"slowest of the ten slowest, timed again: {again[0] * 1000:.1f} ms ({len(again[1])} characters): "
          f"{again[1]!r}")
    print(f"time per character {total_time / max(total_chars, 1) * 1e6:.1f} us")
    print(json.dumps({"strings": args.count, "characters": total_chars, "seconds": round(wall, 2),
                      "ok": counts["ok"], "text_error": counts["text_error"], "crashes": crash_count,
                      "crash_types": {k[6:]: v for k, v in counts.items() if k.startswith("crash:")},
                      "slowest_ms": round(first[0] * 1000, 2), "slowest_chars": len(first[1]),
                      "slowest_again_ms": round(again[0] * 1000, 2), "slowest_again_chars": len(again[1]),
                      "us_per_char": round(total_time / max(total_chars, 1) * 1e6, 2)}))
    return 1 if crash_count else 0


if __name__ == "__main__":
    sys.exit(main())
