"""Score the frontend on its written -> spoken table (tests/data/frontend_cases.tsv), per class.

    python scripts/frontend_report.py [--table tests/data/frontend_cases.tsv] [--failures] [--normalizer nemo]

A case passes when Frontend().normalize gives exactly the spoken words of the table (for the
heteronym class: when the word's phonemes are the table's). The table spells readings in the
built-in normalizer's token form, so a second column counts the readings whose phonemes (word
boundaries aside) are the table's: "pm" and "P M" are heard alike. Prints one line per class with
both rates, the failures with --failures, the first-use time (--normalizer nemo: NeMo's grammars,
compiled or loaded from the cache) and the time per case, and a JSON last line.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
import time
from pathlib import Path

TABLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "frontend_cases.tsv"


def read_table(path: Path) -> list[tuple[str, str, str]]:
    """TSV rows class<TAB>written<TAB>spoken; lines starting with # are comments."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise SystemExit(f"{path}:{number}: expected class<TAB>written<TAB>spoken, got {line!r}")
        rows.append((fields[0], fields[1], fields[2]))
    return rows


def reading(frontend, case_class: str, written: str, spoken: str) -> str:
    """What the frontend says for a case, in the form of the table's third column."""
    if case_class != "heteronym":
        return frontend.normalize(written)
    word = spoken.split("=", 1)[0]
    pronounced = frontend.explain(written)["tokens"]
    phones = next((t["phonemes"] for t in pronounced if t["token"] == word), [])
    return f"{word}={' '.join(phones)}"


def sounds(frontend, case_class: str, words: str) -> list[str]:
    """The phonemes of a reading without word boundaries: "P M" and "pm", "oh five" and "o five"
    sound the same through the voice's G2P, though the table spells them one way."""
    if case_class == "heteronym":
        return words.split()
    return [p for p in frontend.pronounce_words(words) if p != "|"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--failures", action="store_true", help="print every failing case")
    parser.add_argument("--normalizer", choices=("builtin", "nemo"), default="builtin",
                        help="nemo needs the extra (pip install \"tts[nemo]\"); its first use compiles its grammars "
                             "unless they are cached (XDG_CACHE_HOME=$(mktemp -d) measures that)")
    args = parser.parse_args(argv)

    from tts.text import Frontend

    logging.disable(logging.WARNING)
    start = time.perf_counter()
    frontend = Frontend(normalizer=args.normalizer)
    frontend.normalize("Warm up at 5 pm.")  # the lexicon, and NeMo's grammars (compiled or cached), load here
    load_seconds = time.perf_counter() - start
    cases = read_table(args.table)
    start = time.perf_counter()
    readings = [reading(frontend, case_class, written, spoken) for case_class, written, spoken in cases]
    per_case = (time.perf_counter() - start) / max(len(cases), 1)
    passed: collections.Counter = collections.Counter()
    heard: collections.Counter = collections.Counter()  # same phonemes, however spelled
    total: collections.Counter = collections.Counter()
    failures = []
    for (case_class, written, spoken), got in zip(cases, readings):
        total[case_class] += 1
        if got == spoken:
            passed[case_class] += 1
            heard[case_class] += 1
            continue
        same = sounds(frontend, case_class, got) == sounds(frontend, case_class, spoken)
        heard[case_class] += same
        failures.append((case_class, written, spoken, got, same))
    rates = {c: round(passed[c] / total[c], 3) for c in total}
    heard_rates = {c: round(heard[c] / total[c], 3) for c in total}
    print(f"{'class':14s} {'exact':>9s}        {'same phonemes':>9s}")
    for c in total:
        print(f"{c:14s} {passed[c]:4d}/{total[c]:<4d} {100 * rates[c]:5.1f}%  {heard[c]:4d}/{total[c]:<4d} "
              f"{100 * heard_rates[c]:5.1f}%")
    n = sum(total.values())
    overall, overall_heard = sum(passed.values()) / n, sum(heard.values()) / n
    print(f"{'overall':14s} {sum(passed.values()):4d}/{n:<4d} {100 * overall:5.1f}%  {sum(heard.values()):4d}/{n:<4d} "
          f"{100 * overall_heard:5.1f}%")
    if args.failures:
        for case_class, written, spoken, got, same in failures:
            note = " (same phonemes)" if same else ""
            print(f"FAIL{note} [{case_class}] {written!r}\n  want: {spoken}\n  got:  {got}")
    print(f"normalizer {args.normalizer}: first use {load_seconds:.2f} s, {per_case * 1000:.1f} ms per case")
    print(json.dumps({"normalizer": args.normalizer, "load_s": round(load_seconds, 2),
                      "ms_per_case": round(per_case * 1000, 2), "cases": n, "passed": sum(passed.values()),
                      "overall": round(overall, 3), "same_phonemes": round(overall_heard, 3), "classes": rates,
                      "classes_same_phonemes": heard_rates, "lowest_class": min(rates, key=rates.get)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
