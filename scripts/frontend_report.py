"""Score the frontend on its written -> spoken table (tests/data/frontend_cases.tsv), per class.

    python scripts/frontend_report.py [--table tests/data/frontend_cases.tsv] [--failures]

A case passes when Frontend().normalize gives exactly the spoken words of the table (for the
heteronym class: when the word's phonemes are the table's). Prints one line per class with its
pass rate, the failures with --failures, and a JSON last line with the overall and per-class rates.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--failures", action="store_true", help="print every failing case")
    args = parser.parse_args(argv)

    from tts.text import Frontend

    logging.disable(logging.WARNING)
    frontend = Frontend()
    passed: collections.Counter = collections.Counter()
    total: collections.Counter = collections.Counter()
    failures = []
    for case_class, written, spoken in read_table(args.table):
        got = reading(frontend, case_class, written, spoken)
        total[case_class] += 1
        if got == spoken:
            passed[case_class] += 1
        else:
            failures.append((case_class, written, spoken, got))
    rates = {c: round(passed[c] / total[c], 3) for c in total}
    for c in total:
        print(f"{c:14s} {passed[c]:4d}/{total[c]:<4d} {100 * rates[c]:5.1f}%")
    overall = sum(passed.values()) / sum(total.values())
    print(f"{'overall':14s} {sum(passed.values()):4d}/{sum(total.values()):<4d} {100 * overall:5.1f}%")
    if args.failures:
        for case_class, written, spoken, got in failures:
            print(f"FAIL [{case_class}] {written!r}\n  want: {spoken}\n  got:  {got}")
    print(json.dumps({"cases": sum(total.values()), "passed": sum(passed.values()), "overall": round(overall, 3),
                      "classes": rates, "lowest_class": min(rates, key=rates.get)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
