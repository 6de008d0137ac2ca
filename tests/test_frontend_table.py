"""Written -> spoken: the frontend's table of everyday written forms (tests/data/frontend_cases.tsv),
one test per case, plus the held-out table's pass rate and `tts phonemize --json`.

scripts/frontend_report.py prints the same table's pass rate per class.
"""

import collections
import json
import logging
from pathlib import Path

import pytest

from tts.cli import main
from tts.text import Frontend

DATA = Path(__file__).parent / "data"


def _read(name):
    rows = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            case_class, written, spoken = line.split("\t")
            rows.append((case_class, written, spoken))
    return rows


CASES = _read("frontend_cases.tsv")


@pytest.fixture(scope="module")
def frontend():
    return Frontend()


def _reading(frontend, case_class, written, spoken):
    if case_class != "heteronym":
        return frontend.normalize(written)
    word = spoken.split("=", 1)[0]
    phones = next(t["phonemes"] for t in frontend.explain(written)["tokens"] if t["token"] == word)
    return f"{word}={' '.join(phones)}"


def test_the_table_covers_every_class_with_300_cases():
    counts = collections.Counter(c for c, _, _ in CASES)
    assert len(CASES) >= 300
    assert {"cardinal", "ordinal", "money", "date", "time", "url", "unit", "math", "digits", "hyphen", "address",
            "version", "abbreviation", "heteronym"} <= set(counts)
    assert min(counts.values()) >= 10, counts


@pytest.mark.parametrize("case_class, written, spoken", CASES, ids=[f"{c}:{w}" for c, w, _ in CASES])
def test_written_is_read_as_spoken(frontend, case_class, written, spoken, caplog):
    with caplog.at_level(logging.ERROR):
        assert _reading(frontend, case_class, written, spoken) == spoken


def test_held_out_cases_pass_at_least_90_percent(frontend):
    """Cases written after the rules and first scored without changing them (88 of 90)."""
    held_out = _read("frontend_heldout.tsv")
    failed = [(w, s) for c, w, s in held_out if _reading(frontend, c, w, s) != s]
    assert len(failed) <= 0.1 * len(held_out), failed


def test_phonemize_json_shows_rule_class_per_token(capsys):
    assert main(["phonemize", "--json", "Call 555-0199 on Jan. 5\nthe wound"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["input"] == "Call 555-0199 on Jan. 5"
    assert first["words"] == "call five five five , zero one nine nine on january fifth"
    classes = {t["token"]: t["class"] for t in first["tokens"]}
    assert classes["call"] == "word" and classes["zero"] == "phone" and classes["january"] == "date"
    assert [t["written"] for t in first["tokens"] if t["class"] == "date"] == ["Jan. 5", "Jan. 5"]
    joined = []  # the per-token phonemes, joined as G2P.phonemize joins them, give the line's phonemes
    for t in first["tokens"]:
        if t["class"] != "punctuation" and t["token"] != "," and joined:
            joined.append("|")
        joined.extend(t["phonemes"])
    assert first["phonemes"] == " ".join(joined)
    assert second["tokens"][1] == {"token": "wound", "class": "word", "written": "wound",
                                   "phonemes": ["W", "UW1", "N", "D"]}


@pytest.mark.parametrize("written, spoken", [
    ("Yes, OK.", "yes , ok ."),  # a state code only before a ZIP code when it is also a word
    ("The year ending 1999.", "the year ending nineteen ninety nine ."),  # "ending" keys digits after in/with or card
    ("Order 1000 pizzas.", "order one thousand pizzas ."),
    ("Order number 1000.", "order number one zero zero zero ."),
    ("Between 100-1000 users.", "between one hundred to one thousand users ."),  # not a phone number
    ("Ping 192.168.0.1 now.", "ping one nine two dot one six eight dot zero dot one now ."),
    ("H2O and 3D and 5G.", "H two O and three D and five G ."),
    ("He was born in 1990 and moved at 5.", "he was born in nineteen ninety and moved at five ."),
    ("I sat on the Sun.", "i sat on the sun ."),  # weekdays only where a date follows
    ("The 9/11 attacks.", "the nine eleven attacks ."),
])
def test_rules_keep_out_of_ordinary_text(frontend, written, spoken):
    assert frontend.normalize(written) == spoken
