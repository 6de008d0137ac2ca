"""Number words: cardinals, ordinals, years, digit strings, pairs ("sixteen hundred").

Every function takes the digits as an ASCII string, never an int: a digit run of any length is read
(digit by digit beyond what can be read as a quantity), and nothing here calls ``int()`` on more than
``MAX_QUANTITY_DIGITS`` digits (Python refuses to parse over 4,300 digits; inflect refuses ordinals of
over ~36). Cost is linear in the number of digits.
"""

from __future__ import annotations

import sys

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ORDINAL_DIGITS = ("zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
# 999 trillion is the largest number read as a quantity; longer runs are identifiers.
MAX_QUANTITY_DIGITS = 15
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                       "nine": "ninth", "twelve": "twelfth"}


def _import_inflect():
    """inflect decorates its methods with typeguard's @typechecked, which re-parses inflect's source
    once per method at import (about 1.7 s, most of `tts phonemize`'s start-up). Import it with that
    decorator as a no-op: the same functions, without run-time argument checks (ours are plain ints)."""
    if "inflect" in sys.modules:
        return sys.modules["inflect"]
    try:
        import typeguard
    except ImportError:  # a future inflect without typeguard
        import inflect

        return inflect
    from unittest import mock

    def no_check(target=None, **_options):
        return target if target is not None else (lambda function: function)

    with mock.patch.object(typeguard, "typechecked", no_check):
        import inflect
    return inflect


def _clean(words: str) -> str:
    """inflect's "twenty-two thousand, one" -> "twenty two thousand one"."""
    return " ".join(words.replace("-", " ").replace(",", " ").split())


class NumberWords:
    """Reads ASCII digit strings as English words; inflect is imported on first use."""

    def __init__(self) -> None:
        self._engine = None

    def _inflect(self):
        if self._engine is None:
            self._engine = _import_inflect().engine()
        return self._engine

    @staticmethod
    def digits(digits: str) -> str:
        """"0199" -> "zero one nine nine"."""
        return " ".join(DIGIT_WORDS[ord(c) - 48] for c in digits if "0" <= c <= "9")

    def cardinal(self, number: str) -> str:
        """"1,234.5" -> "one thousand two hundred thirty four point five"; "007" and runs over 15
        digits are identifiers, read digit by digit."""
        whole, _, fraction = number.replace(",", "").partition(".")
        whole = whole or "0"
        if len(whole) > MAX_QUANTITY_DIGITS or (len(whole) > 1 and whole.startswith("0")):
            words = self.digits(whole)
        else:
            words = _clean(self._inflect().number_to_words(int(whole), andword="", zero="zero"))
        return f"{words} point {self.digits(fraction)}" if fraction else words

    def ordinal(self, number: str) -> str:
        """"21" -> "twenty first", "1,000" -> "one thousandth"; beyond a quantity, the digits with the
        last one as an ordinal."""
        whole = number.replace(",", "")
        if len(whole) > MAX_QUANTITY_DIGITS or (len(whole) > 1 and whole.startswith("0")):
            head = self.digits(whole[:-1])
            return f"{head} {_ORDINAL_DIGITS[ord(whole[-1]) - 48]}".strip()
        return self.ordinal_words(self.cardinal(whole))

    @staticmethod
    def ordinal_words(words: str) -> str:
        """"twenty one" -> "twenty first": the ordinal of a cardinal's last word."""
        head, _, last = words.rpartition(" ")
        if last in _IRREGULAR_ORDINALS:
            last = _IRREGULAR_ORDINALS[last]
        elif last.endswith("y"):
            last = last[:-1] + "ieth"
        else:
            last += "th"
        return f"{head} {last}".strip()

    def year(self, number: str) -> str:
        """1999 -> nineteen ninety nine, 2008 -> two thousand eight, 1900 -> nineteen hundred, 1905 ->
        nineteen oh five, 2010 -> twenty ten."""
        n = int(number)
        century, rest = divmod(n, 100)
        if n % 1000 == 0 or 2000 <= n < 2010 or n < 1000:
            return self.cardinal(str(n))
        if rest == 0:
            return f"{self.cardinal(str(century))} hundred"
        if rest < 10:
            return f"{self.cardinal(str(century))} oh {self.cardinal(str(rest))}"
        return f"{self.cardinal(str(century))} {self.cardinal(str(rest))}"

    def pairs(self, number: str) -> str:
        """How house and flight numbers are read: "221" -> two twenty one, "105" -> one oh five,
        "1600" -> sixteen hundred, "4567" -> forty five sixty seven, "2001" -> twenty oh one; five
        digits or more, and a leading zero, digit by digit."""
        if len(number) <= 2 and not (len(number) == 2 and number[0] == "0"):
            return self.cardinal(number)
        if len(number) > 4 or number[0] == "0":
            return self.digits(number)
        head, tail = number[:-2], number[-2:]
        if tail == "00":
            return f"{self.cardinal(head)} hundred"
        tail_words = f"oh {DIGIT_WORDS[int(tail[1])]}" if tail[0] == "0" else self.cardinal(tail)
        return f"{self.cardinal(head)} {tail_words}"

    def is_one(self, number: str) -> bool:
        """Whether a written amount takes the singular ("1", "1.0" is plural: one point zero dollars)."""
        return number.replace(",", "").lstrip("0") == "1" and "." not in number
