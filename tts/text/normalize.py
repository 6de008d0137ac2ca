"""Text normalization: written English -> the words a reader would say.

``normalize("Dr. Smith paid $3.50 on Jan. 5, 2020.")``
-> ``"doctor smith paid three dollars fifty cents on january fifth , twenty twenty ."``

The output is space-separated tokens: lowercase words, sentence punctuation ``, . ? ! ; :`` as tokens
of their own (the acoustic model uses them for pauses and intonation), and single uppercase letters
for spelled-out initialisms (``FBI`` -> ``F B I``, ``3 pm`` -> ``three P M``), so the letter ``A`` is
never confused with the article ``a``.

The text is cut into pieces that are either still raw or already spoken words. Each rule below (times,
dates, abbreviations, money, units, numbers ...) rewrites matches in the raw pieces only, in a fixed
order, so that no rule ever re-reads another rule's output. What no rule and no word pattern covers
(emoji, stray symbols) is dropped with one logged warning.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Callable, Container, Optional, Union

logger = logging.getLogger(__name__)

Piece = tuple[str, bool]  # (text, done): done pieces are normalized output, never rewritten again
Result = Union[str, list[Piece], None]  # a rule's replacement: spoken text, mixed pieces, or None to keep

PUNCTUATION_STRENGTH = {",": 1, ":": 2, ";": 3, ".": 4, "!": 5, "?": 6}  # of two in a row the stronger stays

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
MONTH_ABBREVIATIONS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9,
                       "Oct": 10, "Nov": 11, "Dec": 12}
_MONTH_NUMBER = {**{m.capitalize(): i for i, m in enumerate(MONTHS, 1)}, **MONTH_ABBREVIATIONS}
_MONTH = "(" + "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True)) + r")\b(\.)?"

# Read wherever they stand, with or without a dot.
PERSONAL_TITLES = {"Mr": "mister", "Mrs": "missus", "Ms": "miz", "Messrs": "messieurs"}
# Read only before a capitalized name; (word, whether the dot may be left out).
TITLES = {"Prof": ("professor", True), "Mt": ("mount", True), "Rev": ("reverend", False),
          "Gen": ("general", False), "Capt": ("captain", False), "Lt": ("lieutenant", False),
          "Col": ("colonel", False), "Sgt": ("sergeant", False), "Gov": ("governor", False),
          "Sen": ("senator", False), "Rep": ("representative", False), "Hon": ("honorable", False),
          "Fr": ("father", False), "Pres": ("president", False)}
# Abbreviations read anywhere; the dot is optional where the bare form is not also a word.
ABBREVIATIONS = {"etc": "et cetera", "vs": "versus", "approx": "approximately", "Inc": "incorporated",
                 "Ltd": "limited", "Corp": "corporation", "Dept": "department", "Blvd": "boulevard",
                 "Jr": "junior", "Sr": "senior"}
ABBREVIATIONS_WITH_DOT = {"Co": "company", "Rd": "road", "Ave": "avenue", "fig": "figure", "Fig": "figure",
                          "vol": "volume", "Vol": "volume", "ca": "circa", "cf": "compare"}
# Read as letters even where the dictionary has a word of the same spelling ("the US economy").
ALWAYS_SPELLED = frozenset({"US"})

CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
              "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", None, None)}
SCALES = {"thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
          "k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion", "BN": "billion"}
# Units read only right after a number: symbol -> (singular, plural).
UNITS = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "yd": ("yard", "yards"), "mi": ("mile", "miles"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"), "m/s": ("meter per second", "meters per second"),
    "l": ("liter", "liters"), "L": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"), "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"), "W": ("watt", "watts"), "kW": ("kilowatt", "kilowatts"),
    "MW": ("megawatt", "megawatts"), "ms": ("millisecond", "milliseconds"), "sec": ("second", "seconds"),
    "min": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
FRACTIONS = {"½": ("1/2", "a half"), "¼": ("1/4", "a quarter"), "¾": ("3/4", "three quarters"),
             "⅓": ("1/3", "a third"), "⅔": ("2/3", "two thirds"), "⅛": ("1/8", "an eighth")}
# Words before which a Roman numeral is a number ("World War II"); after other names it is an
# ordinal ("Henry VIII" -> Henry the eighth).
ROMAN_COUNTED = frozenset("war chapter part volume vol act scene phase type class level book section bowl "
                          "apollo episode season stage grade category".split())
_ROMAN = {"I": 1, "V": 5, "X": 10}
SYMBOL_WORDS = {"&": "and", "+": "plus", "=": "equals", "@": "at", "%": "percent", "°": "degrees"}
SILENT = frozenset("'\"/")  # quote marks and slashes separate words and are not read
PAUSES = frozenset("()[]{}-")  # brackets and a free-standing dash are read as a short pause

_CHARACTERS = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "ʼ": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "…": "...", "−": "-", "‐": "-", "‑": "-", "‒": "-", "⁄": "/",
    "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i",
    "²": " squared ", "³": " cubed ", "×": " times ", "÷": " divided by ",
})
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"  # integer part with optional thousands commas, decimals


def _clean(words: str) -> str:
    """inflect's "twenty-two thousand, one" -> "twenty two thousand one"."""
    return " ".join(words.replace("-", " ").replace(",", " ").split())


def _ends_sentence(text: str, end: int) -> bool:
    """Whether a dot that closes an abbreviation at text[end - 1] also closes the sentence."""
    rest = text[end:]
    return not rest.strip() or re.match(r"\s+[\"']?[A-Z]", rest) is not None


def _after_name(text: str, start: int) -> bool:
    """Whether text[start:] follows a capitalized word that does not start a sentence ("Elm St.")."""
    m = re.search(r"(?:^|([.!?]\s*)|\s)([A-Z][a-z]+)\s+$", text[:start])
    return m is not None and m.group(1) is None and m.start(2) > 0


def _plural_word(words: str) -> str:
    """"nineteen ninety" -> "nineteen nineties": the plural of a number's last word."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    return f"{head} {last}".strip()


def _import_inflect():
    """inflect decorates its methods with typeguard's @typechecked, which re-parses inflect's source
    once per method at import (about 1.7 s, most of `tts phonemize`'s start-up). Import it with that
    decorator as a no-op: the same functions, without run-time argument checks (ours are plain ints)."""
    import sys

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


class Normalizer:
    """Callable text -> normalized text. ``lexicon`` (a container of lowercase words, e.g. the CMU
    dictionary) decides whether an all-caps word of 2 to 4 letters is read as a word (``NASA``) or
    spelled (``FBI`` when the dictionary lacks it); without one such words stay uppercase for the
    grapheme-to-phoneme step to decide."""

    def __init__(self, *, lexicon: Optional[Container[str]] = None):
        self.lexicon = lexicon
        self._engine = None
        month = _MONTH
        number = _NUMBER
        # (pattern, handler) in the order they run; each handler gets (match, the raw piece's text).
        self._rules: list[tuple[re.Pattern, Callable[[re.Match, str], Result]]] = [
            # A minus sign only where a number starts a word; run first, while "^" is still the text's start.
            (re.compile(r"(?:^|(?<=[\s(\[{\"]))-(?=[$£€¥]?\.?\d)"), lambda m, text: "minus"),
            (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), self._iso_date),
            # Ranges (5-10, 2019-20, 3:30-4:30) before times and dates, which would cut them apart.
            (re.compile(r"(?<=\d)\s?[-–]\s?(?=[$£€¥]?\d)"), lambda m, text: "to"),
            (re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s?([AaPp])(?:\.\s?|\s?)[Mm]\b(\.)?)?"), self._time),
            (re.compile(r"\b(\d{1,2})\s?([AaPp])(?:\.\s?|\s?)[Mm]\b(\.)?"), self._hour),
            (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), self._slash_date),
            (re.compile(rf"\b{month}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:(,)?\s+(\d{{4}})\b)?"), self._month_day),
            (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{month}(?:,?\s+(\d{{4}})\b)?"), self._day_month),
            (re.compile(rf"\b{month},?\s+(\d{{4}})\b"), self._month_year),
            (re.compile(r"\b(Dr|St)\b(\.)?"), self._dr_st),
            (re.compile(r"\b(" + "|".join(PERSONAL_TITLES) + r")\b\.?"), lambda m, text: PERSONAL_TITLES[m.group(1)]),
            (re.compile(r"\b(" + "|".join(TITLES) + r")\b(\.)?(?=\s+[A-Z])"), self._title),
            (re.compile(r"\b(e\.g|i\.e|E\.g|I\.e)\.(?=\W|$)"), self._latin),
            (re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\b(\.)?"), self._abbreviation),
            (re.compile(r"\b(" + "|".join(ABBREVIATIONS_WITH_DOT) + r")\.(?=\s|$)"), self._abbreviation),
            (re.compile(r"\b(No|no|Nos|nos)\.\s?(?=#?\d)|#(?=\d)"), self._number_sign),
            (re.compile(r"\bPh\.D\.|\b(?:[A-Za-z]\.){2,}"), self._dotted_initialism),
            (re.compile(r"\b([A-Z])\.(?=\s+[A-Z][a-z])"), lambda m, text: m.group(1)),  # "John F. Kennedy"
            (re.compile(r"(?<=[a-z0-9])\.(?=[a-z])"), lambda m, text: "dot"),  # example.com
            (re.compile(r"\b(?=[IVX]{2,}\b)(X{0,3})(IX|IV|V?I{0,3})\b"), self._roman),
            (re.compile(rf"([$£€¥])\s?{number}(?:\s?(thousand|million|billion|trillion|bn|BN|[mMkK])\b)?"),
             self._money),
            (re.compile(r"\b(\d{1,2})p\b"), lambda m, text: self._amount(int(m.group(1)), "penny", "pence")),
            (re.compile(rf"\b{number}\s?¢"), lambda m, text: self._amount(int(m.group(1)), "cent", "cents")),
            (re.compile(rf"{number}\s?%"), lambda m, text: self.cardinal(m.group(0)[:-1].rstrip()) + " percent"),
            (re.compile(rf"{number}\s?(" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
                        + r")(?![\w/])"), self._unit),
            (re.compile(r"(?<![\w/.])(\d{1,2})/(\d{1,2})(?![\w/])"), self._fraction),
            (re.compile(r"\b(\d+)(?:st|nd|rd|th|ST|ND|RD|TH)\b"), lambda m, text: self.ordinal(int(m.group(1)))),
            (re.compile(r"(?<![\w'])'(\d)0s\b"), lambda m, text: _plural_word(self.cardinal(m.group(1) + "0"))),
            (re.compile(r"\b(1[1-9]|20)(\d)0s\b"), lambda m, text: _plural_word(self.year(int(m.group(0)[:4])))),
            (re.compile(r"\b([1-9])0s\b"), lambda m, text: _plural_word(self.cardinal(m.group(1) + "0"))),
            (re.compile(r"(?<![\d.,])(1[1-9]\d\d|20\d\d)(?![\d]|[.,]\d)"), lambda m, text: self.year(int(m.group(1)))),
            (re.compile(r"(?:^|(?<=\s))\.(\d+)"), lambda m, text: "point " + self.digits(m.group(1))),
            (re.compile(number), lambda m, text: self.cardinal(m.group(0))),
        ]

    # --- numbers -------------------------------------------------------------------------------

    def _inflect(self):
        if self._engine is None:
            self._engine = _import_inflect().engine()
        return self._engine

    def digits(self, digits: str) -> str:
        return " ".join(self.cardinal(d) for d in digits)

    def cardinal(self, number: str) -> str:
        """"1,234.5" -> "one thousand two hundred thirty four point five"."""
        whole, _, fraction = number.replace(",", "").partition(".")
        if len(whole) > 15 or (len(whole) > 1 and whole.startswith("0")):  # an identifier, not a quantity
            words = self.digits(whole)
        else:
            words = _clean(self._inflect().number_to_words(int(whole), andword="", zero="zero"))
        return f"{words} point {self.digits(fraction)}" if fraction else words

    def ordinal(self, n: int) -> str:
        engine = self._inflect()
        return _clean(engine.ordinal(engine.number_to_words(n, andword="", zero="zero")))

    def year(self, n: int) -> str:
        """1999 -> nineteen ninety nine, 2008 -> two thousand eight, 1900 -> nineteen hundred, 1905 ->
        nineteen oh five, 2010 -> twenty ten."""
        century, rest = divmod(n, 100)
        if n % 1000 == 0 or 2000 <= n < 2010:
            return self.cardinal(str(n))
        if rest == 0:
            return f"{self.cardinal(str(century))} hundred"
        if rest < 10:
            return f"{self.cardinal(str(century))} oh {self.cardinal(str(rest))}"
        return f"{self.cardinal(str(century))} {self.cardinal(str(rest))}"

    def _amount(self, n: int, singular: str, plural: str) -> str:
        return f"{self.cardinal(str(n))} {singular if n == 1 else plural}"

    # --- rules: each returns spoken text, a list of pieces, or None to leave the match as it was --

    def _time(self, m: re.Match, text: str) -> Result:
        hour, minute, second = int(m.group(1)), int(m.group(2)), m.group(3)
        meridiem = m.group(4)
        if minute > 59 or hour > (12 if meridiem else 24) or (second is not None and int(second) > 59):
            return None
        words = self.cardinal(str(hour))
        if minute:
            words += " " + ("oh " if minute < 10 else "") + self.cardinal(str(minute))
        elif not meridiem:
            words += " o'clock" if hour <= 12 else " hundred"
        if second is not None and int(second):
            words += f" and {self._amount(int(second), 'second', 'seconds')}"
        if meridiem:
            words += f" {meridiem.upper()} M"
        return words + self._closing_period(m, text)

    def _hour(self, m: re.Match, text: str) -> Result:
        hour = int(m.group(1))
        if not 1 <= hour <= 12:
            return None
        return f"{self.cardinal(str(hour))} {m.group(2).upper()} M" + self._closing_period(m, text)

    def _closing_period(self, m: re.Match, text: str) -> str:
        """ " ." when the abbreviation's own dot (the match's last group) also ends the sentence."""
        return " ." if m.group(m.lastindex or 0) == "." and _ends_sentence(text, m.end()) else ""

    def _date(self, year: Optional[int], month: int, day: Optional[int], comma: bool = False) -> Result:
        if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
            return None
        words = MONTHS[month - 1] + (f" {self.ordinal(day)}" if day is not None else "")
        if year is not None:
            words += (" , " if comma else " ") + self.year(year)
        return words

    def _iso_date(self, m: re.Match, text: str) -> Result:
        return self._date(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    def _slash_date(self, m: re.Match, text: str) -> Result:
        """Month first (US) unless the first number cannot be a month: 12/25/2020 and 25/12/2020."""
        first, second, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        month, day = (second, first) if first > 12 else (first, second)
        return self._date(year, month, day)

    def _month_day(self, m: re.Match, text: str) -> Result:
        year = int(m.group(5)) if m.group(5) else None
        return self._date(year, _MONTH_NUMBER[m.group(1)], int(m.group(3)), comma=bool(m.group(4)))

    def _day_month(self, m: re.Match, text: str) -> Result:
        year = int(m.group(4)) if m.group(4) else None
        words = self._date(year, _MONTH_NUMBER[m.group(2)], None)
        day = int(m.group(1))
        if words is None or not 1 <= day <= 31:
            return None
        the = "" if re.search(r"\bthe\s+$", text[:m.start()], re.IGNORECASE) else "the "
        period = self._month_period(m.group(2), m, text) if m.group(3) and year is None else ""
        return f"{the}{self.ordinal(day)} of {words}{period}"

    def _month_year(self, m: re.Match, text: str) -> Result:
        return self._date(int(m.group(3)), _MONTH_NUMBER[m.group(1)], None)

    @staticmethod
    def _month_period(month: str, m: re.Match, text: str) -> str:
        """" ." for the dot after a month that ends the match: always a full stop after a full name
        ("the 4th of July."), after an abbreviation only where a sentence ends ("5 Jan. Then")."""
        return " ." if month.lower() in MONTHS or _ends_sentence(text, m.end()) else ""

    def _dr_st(self, m: re.Match, text: str) -> Result:
        """Dr. and St. before a name are doctor and saint; after a street name, drive and street."""
        street = {"Dr": "drive", "St": "street"}[m.group(1)]
        if _after_name(text, m.start()):
            return street + self._closing_period(m, text)
        if re.match(r"\s+[A-Z]", text[m.end():]):
            return {"Dr": "doctor", "St": "saint"}[m.group(1)]
        if m.group(1) == "Dr":
            return "doctor" + self._closing_period(m, text)
        return street + self._closing_period(m, text)

    def _title(self, m: re.Match, text: str) -> Result:
        word, dot_optional = TITLES[m.group(1)]
        return word if m.group(2) or dot_optional else None

    def _latin(self, m: re.Match, text: str) -> Result:
        return "for example" if m.group(1).lower() == "e.g" else "that is"

    def _abbreviation(self, m: re.Match, text: str) -> Result:
        word = ABBREVIATIONS.get(m.group(1)) or ABBREVIATIONS_WITH_DOT[m.group(1)]
        if m.group(0).endswith(".") and _ends_sentence(text, m.end()):
            return word + " ."
        return word

    def _number_sign(self, m: re.Match, text: str) -> Result:
        return "numbers" if m.group(0).lower().startswith("nos") else "number"

    def _dotted_initialism(self, m: re.Match, text: str) -> Result:
        letters = " ".join(c.upper() for c in m.group(0) if c.isalpha())
        return letters + (" ." if _ends_sentence(text, m.end()) else "")

    def _money(self, m: re.Match, text: str) -> Result:
        unit, units, cent, cents = CURRENCIES[m.group(1)]
        whole, fraction, scale = m.group(2).replace(",", ""), m.group(3), m.group(4)
        if scale:  # "$1.5 million" -> "one point five million dollars"
            number = whole + (f".{fraction}" if fraction else "")
            return f"{self.cardinal(number)} {SCALES[scale]} {units}"
        if fraction and (cent is None or len(fraction) > 2):
            return f"{self.cardinal(whole + '.' + fraction)} {units}"
        n, c = int(whole), int(fraction.ljust(2, "0")) if fraction else 0
        if c and not n:
            return self._amount(c, cent, cents)
        words = self._amount(n, unit, units)
        return f"{words} {self._amount(c, cent, cents)}" if c else words

    def _unit(self, m: re.Match, text: str) -> Result:
        singular, plural = UNITS[m.group(3)]
        number = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
        return f"{self.cardinal(number)} {singular if number == '1' else plural}".lower()

    def _roman(self, m: re.Match, text: str) -> Result:
        values = [_ROMAN[c] for c in m.group(0)]
        n = sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))
        before = re.search(r"([A-Za-z]+)\s+$", text[:m.start()])
        if before and before.group(1).lower() in ROMAN_COUNTED:
            return self.cardinal(str(n))
        if before and before.group(1)[0].isupper():
            return "the " + self.ordinal(n)
        return None

    def _fraction(self, m: re.Match, text: str) -> Result:
        numerator, denominator = int(m.group(1)), int(m.group(2))
        if not 2 <= denominator <= 10 or not 0 < numerator < 2 * denominator:
            return None  # "24/7", "9/11": read as separate numbers
        if denominator == 2:
            name = "half" if numerator == 1 else "halves"
        elif denominator == 4:
            name = "quarter" if numerator == 1 else "quarters"
        else:
            name = self.ordinal(denominator) + ("" if numerator == 1 else "s")
        return f"{self.cardinal(str(numerator))} {name}"

    # --- the pipeline ----------------------------------------------------------------------------

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        """Text -> normalized tokens (see the module docstring). Unspeakable characters are dropped
        with a warning; text with nothing speakable gives an empty list."""
        if not isinstance(text, str):
            raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
        text = self._clean(text)
        pieces: list[Piece] = [(text, False)]
        for pattern, handler in self._rules:
            pieces = self._apply(pieces, pattern, handler)
        has_lower = any(c.islower() for c in text)
        tokens: list[str] = []
        dropped: list[str] = []
        for piece, done in pieces:
            tokens.extend(piece.split() if done else self._words(piece, has_lower, dropped))
        if dropped:
            shown = text if len(text) <= 80 else text[:77] + "..."
            logger.warning("dropped unspeakable characters %s from %r", " ".join(dict.fromkeys(dropped)), shown)
        return self._collapse_punctuation(tokens)

    @staticmethod
    def _clean(text: str) -> str:
        text = re.sub(r"(\d)\s*([½¼¾⅓⅔⅛])", lambda m: f"{m.group(1)} and {FRACTIONS[m.group(2)][1]}", text)
        text = "".join(FRACTIONS[c][0] if c in FRACTIONS else c for c in text)
        text = text.translate(_CHARACTERS)
        # Accents: café -> cafe. NFKD also unfolds ligatures and compatibility forms (ﬁ, ℃, №).
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
        text = text.translate(_CHARACTERS)
        text = re.sub(r"(?<=\d)\s?[–—]\s?(?=\d)", "-", text)  # 5–10 is a range
        text = re.sub(r"\s*(?:[–—―]|--+)\s*", " , ", text)  # a dash between clauses is a pause
        text = re.sub(r"\.{2,}", ".", text)
        return " ".join(text.split())

    @staticmethod
    def _apply(pieces: list[Piece], pattern: re.Pattern, handler: Callable[[re.Match, str], Result]) -> list[Piece]:
        out: list[Piece] = []
        for text, done in pieces:
            if done:
                out.append((text, True))
                continue
            position = 0
            for m in pattern.finditer(text):
                replacement = handler(m, text)
                if replacement is None:
                    continue
                out.append((text[position:m.start()], False))
                out.extend([(replacement, True)] if isinstance(replacement, str) else replacement)
                position = m.end()
            out.append((text[position:], False))
        return [(t, done) for t, done in out if t.strip()]

    def _words(self, text: str, has_lower: bool, dropped: list[str]) -> list[str]:
        """Tokenize a raw piece: words (cased as described in the module docstring), punctuation and
        symbols; characters that cannot be read are appended to ``dropped``."""
        out: list[str] = []
        for m in re.finditer(r"[A-Za-z]+(?:'[A-Za-z]+)*|\d+|\S", text):
            token = m.group(0)
            if token[0].isalpha():
                out.extend(self._cased(token, has_lower))
            elif token.isdigit():  # digits glued to something no rule matched
                out.append(self.cardinal(token))
            elif token in PUNCTUATION_STRENGTH:
                out.append(token)
            elif token in SYMBOL_WORDS:
                out.append(SYMBOL_WORDS[token])
            elif token == "-" and not text[m.start() - 1:m.start()].isspace() \
                    and not text[m.end():m.end() + 1].isspace():
                continue  # a hyphen inside a compound (well-known, COVID-19), not a dash between spaces
            elif token in PAUSES:
                out.append(",")
            elif token not in SILENT:
                dropped.append(token)
        return out

    def _cased(self, word: str, has_lower: bool) -> list[str]:
        acronym = re.fullmatch(r"([A-Z]{2,4})('?s)?", word)
        if acronym:
            letters, suffix = acronym.group(1), acronym.group(2) or ""
            spell = letters in ALWAYS_SPELLED and has_lower
            if not spell and self.lexicon is None:
                return [word]  # the G2P step reads it as a word if its dictionary has it, else spells it
            if not spell and letters.lower() in self.lexicon:
                return [word.lower()]
            return [*letters[:-1], letters[-1] + suffix]
        if len(word) == 1 and word.isupper() and word not in "AI":
            return [word]  # a letter: "plan B", "vitamin C"
        return [word.lower()]

    @staticmethod
    def _collapse_punctuation(tokens: list[str]) -> list[str]:
        """Of consecutive punctuation the strongest stays; none at the start, no comma at the end."""
        out: list[str] = []
        for token in tokens:
            if token not in PUNCTUATION_STRENGTH:
                out.append(token)
            elif out and out[-1] in PUNCTUATION_STRENGTH:
                if PUNCTUATION_STRENGTH[token] > PUNCTUATION_STRENGTH[out[-1]]:
                    out[-1] = token
            elif out:
                out.append(token)
        while out and out[-1] in (",", ":", ";"):
            out.pop()
        return out


def normalize(text: str, *, lexicon: Optional[Container[str]] = None) -> str:
    """Written English -> space-separated spoken tokens; see ``Normalizer``. Returns "" when nothing
    in the text can be spoken."""
    return Normalizer(lexicon=lexicon)(text)
