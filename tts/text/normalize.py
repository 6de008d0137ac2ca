"""Text normalization: written English -> the words a reader would say.

``normalize("Dr. Smith paid $3.50 on Jan. 5, 2020.")``
-> ``"doctor smith paid three dollars fifty cents on january fifth , twenty twenty ."``

The output is space-separated tokens: lowercase words, sentence punctuation ``, . ? ! ; :`` as tokens
of their own (the acoustic model uses them for pauses and intonation), and single uppercase letters
for spelled-out initialisms (``FBI`` -> ``F B I``, ``3 pm`` -> ``three P M``), so the letter ``A`` is
never confused with the article ``a``.

The text is cut into pieces that are either still raw or already spoken words. Each rule below (URLs,
math, phone numbers, dates, times, addresses, money, units, numbers ...) rewrites matches in the raw
pieces only, in a fixed order, so that no rule ever re-reads another rule's output; each spoken piece
remembers the class of the rule that wrote it (``Normalizer.annotate``, what ``tts phonemize --json``
shows). The tables of abbreviations, units and the like are in ``tables.py``.

The normalizer is total: any Unicode string gives a list of tokens, in time linear in its length.
Letters of other scripts are transliterated (anyascii: Москва -> moskva), digits of any script are
read, and what no rule and no word pattern covers (emoji, stray symbols) is dropped with one logged
warning that shows what was dropped.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Callable, Container, Optional, Union

from tts.text.numbers import NumberWords
from tts.text.tables import (ABBREVIATIONS, ABBREVIATIONS_WITH_DOT, ALWAYS_SPELLED, CURRENCIES, CURRENCY_CODES,
                             DIRECTIONS, FRACTIONS, MONTH_ABBREVIATIONS, MONTHS, PER_UNITS, PERSONAL_TITLES,
                             PUNCTUATION_STRENGTH, ROMAN_COUNTED, SCALES, SENTENCE_PUNCTUATION, SPELLED_WORDS, STATES,
                             STREET_SUFFIXES, SYMBOL_WORDS, TITLES, UNITS, UNITS_ANY_CASE, URL_WORDS, VERSIONED_NAMES,
                             WEEKDAYS)

logger = logging.getLogger(__name__)

# A piece of the text: (text, rule class, written source). Raw pieces have class None; spoken ones
# are normalized output and are never rewritten again.
Piece = tuple[str, Optional[str], str]
Result = Union[str, list[tuple[str, bool]], None]  # a rule's replacement: spoken text, (text, spoken) parts, or None

SILENT = frozenset("'\"/_\\`^*~|")  # quote marks, slashes and the like separate words and are not read
PAUSES = frozenset("()[]{}-")  # brackets and a free-standing dash are read as a short pause
RULE_CLASSES = ("url", "email", "math", "phone", "digits", "date", "version", "money", "range", "time",
                "address", "abbreviation", "initialism", "unit", "percent", "fraction", "ordinal", "year",
                "roman", "number")

_MONTH_NUMBER = {**{m.capitalize(): i for i, m in enumerate(MONTHS, 1)}, **MONTH_ABBREVIATIONS}
_MONTH = "(" + "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True)) + r")\b(\.)?"
_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"  # integer part with optional thousands commas, decimals
_SIGNS = "".join(CURRENCIES)
_CHARACTERS = str.maketrans({
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "ʼ": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "«": '"', "»": '"', "″": '"',
    "…": "...", "−": "-", "‐": "-", "‑": "-", "‒": "-", "⁄": "/", "∕": "/", "∗": "*", "·": " ",
    "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i",
    "²": " squared ", "³": " cubed ", "×": " times ", "÷": " divided by ",
    # Math signs that NFKD would fold (≠ into "=") or that have no decomposition.
    "≠": " is not equal to ", "≤": " is less than or equal to ", "≥": " is greater than or equal to ",
    "≈": " approximately ", "±": " plus or minus ", "∓": " minus or plus ", "√": " the square root of ",
    "∞": " infinity ", "π": " pi ", "Π": " pi ", "µ": "u", "μ": "u",
})
_LOOKBACK = 80  # characters of context a rule looks at before its match; keeps every rule linear
_STATE_WORDS = frozenset({"OK", "OR", "IN", "ME", "HI", "OH", "ID"})  # read as states only before a ZIP code
_TIME_ZONE = re.compile(r"\s+(?:[ECMPA][SD]?T|GMT|UTC|BST|CET|CEST|IST|JST|AEST)\b")
_SENTENCE_END = re.compile(r"\s*\Z|\s+[\"']?[A-Z]")
_AFTER_NAME = re.compile(rf"(?:^|([{re.escape(SENTENCE_PUNCTUATION)}]\s*)|\s)([A-Z][a-z]+|\d+(?:st|nd|rd|th))\s+$")
_OPERATOR_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "=": "equals", "^": "to the power of",
                   "<": "is less than", ">": "is greater than"}


def _ends_sentence(text: str, end: int) -> bool:
    """Whether a dot that closes an abbreviation at text[end - 1] also closes the sentence."""
    return _SENTENCE_END.match(text, end) is not None


def _before(text: str, start: int) -> str:
    """The text just before a match, at most _LOOKBACK characters (rules read only near context)."""
    return text[max(0, start - _LOOKBACK):start]


def _after_name(text: str, start: int) -> bool:
    """Whether text[start:] follows a capitalized word that does not start a sentence ("Elm St.")."""
    lo = max(0, start - _LOOKBACK)
    m = _AFTER_NAME.search(text[lo:start])
    return m is not None and m.group(1) is None and (m.start(2) > 0 or lo > 0)


def _attributive(m: re.Match, text: str) -> bool:
    """Whether an amount stands before a noun after an article, where its unit is singular:
    "a $5 bill", "a 5 GB file", "the 60 W bulb"."""
    return re.search(r"(?:^|\s)(?:[Aa]n?|[Tt]he)\s+$", _before(text, m.start())) is not None \
        and re.match(r"\s+[a-z]", text[m.end():m.end() + 2]) is not None


def _plural_word(words: str) -> str:
    """"nineteen ninety" -> "nineteen nineties": the plural of a number's last word."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    return f"{head} {last}".strip()


def _transliterate(run: str) -> str:
    """Letters of another script -> ASCII letters (anyascii); "" without the package."""
    try:
        from anyascii import anyascii
    except ImportError:
        return ""
    return re.sub(r"[^A-Za-z0-9' ]+", " ", anyascii(run))


class Normalizer:
    """Callable text -> normalized text. ``lexicon`` (a container of lowercase words, e.g. the CMU
    dictionary) decides whether an all-caps word of 2 to 4 letters is read as a word (``NASA``) or
    spelled (``FBI`` when the dictionary lacks it); without one such words stay uppercase for the
    grapheme-to-phoneme step to decide."""

    def __init__(self, *, lexicon: Optional[Container[str]] = None):
        self.lexicon = lexicon
        self.numbers = NumberWords()
        month, number = _MONTH, _NUMBER
        signs = re.escape(_SIGNS)
        units = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
        units_any_case = "|".join(re.escape(u) for u in sorted(UNITS_ANY_CASE, key=len, reverse=True))
        per_units = "|".join(re.escape(u) for u in sorted(PER_UNITS, key=len, reverse=True))
        suffixes = "|".join(sorted(STREET_SUFFIXES, key=len, reverse=True))
        states = "|".join(STATES)
        operand = r"(?:\d+(?:\.\d+)?[a-z]?|[a-z])"
        rule = re.compile
        # (class, pattern, handler) in the order they run; each handler gets (match, the raw piece's text).
        self._rules: list[tuple[str, re.Pattern, Callable[[re.Match, str], Result]]] = [
            # A minus sign only where a number starts a word; run first, while "^" is still the text's start.
            ("number", rule(r"(?:^|(?<=[\s(\[{\"=]))(?<![=<>]\s)-(?=[" + signs + r"]?\.?\d)"), lambda m, text: "minus"),
            ("email", rule(r"\b[A-Za-z0-9][\w.+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b"), self._email),
            ("url", rule(r"\b(?:(https?|ftp)://|(?=www\.))[^\s<>\"']+[^\s<>\"'.,;:!?)]"), self._url),
            ("url", rule(r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|co|uk|de|fr|info|ai|dev|app)"
                         r"(?:/[^\s<>\"']*[^\s<>\"'.,;:!?)])?(?!\w|\.\w)"), self._url),
            # Math: a chain of operands with an equals or comparison sign, where "-" is minus, not "to".
            ("math", rule(rf"(?<![\w.,]){operand}(?:\s*[-+*/^]\s*{operand})*\s*[=<>]\s*-?{operand}"
                          rf"(?:\s*[-+*/^]\s*{operand})*(?!\w|[.,]\d)"), self._math),
            ("math", rule(r"(?<![\w.,])(\d+(?:\.\d+)?)\s*([+*^])\s*(\d+(?:\.\d+)?)(?!\w|[.,]\d)"), self._math),
            ("phone", rule(r"(?<![\w+-])(?:(\+?1)[-.\s])?(?:\((\d{3})\)\s?|(\d{3})[-.])(\d{3})[-.](\d{4})(?![\w-])"),
             self._phone),
            ("phone", rule(r"(?<![\w+])\+(\d{1,3})((?:[\s-]\d{1,5}){2,5})(?![\w-])"), self._international_phone),
            ("phone", rule(r"(?<![\w-])([2-9]\d{2})-(\d{4})(?![\w-])"), self._phone),
            ("address", rule(rf"(?<=[a-z]),\s+({states})\b(?:\s+(\d{{5}})(?:-(\d{{4}}))?\b)?(?=\s*(?:$|[.,;!?)]|\d))"),
             self._state),
            ("address", rule(rf"\b({states})\s+(\d{{5}})(?:-(\d{{4}}))?\b"), self._state),
            ("date", rule(r"(?<![\w/.-])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\w/-]|\.\d)"), self._ymd_date),
            ("date", rule(r"(?<![\w/.-])(\d{1,2})([-/.])(\d{1,2})\2(\d{4})(?![\w/-]|\.\d)"), self._dmy_date),
            ("digits", rule(r"(?<![\w-])\d+(?:-\d+){2,}(?![\w-])"), self._digit_groups),
            ("digits", rule(r"(?<![\w-])(?=[A-Z0-9-]*\d)[A-Z0-9]+(?:-[A-Z0-9]+){2,}(?![\w-])"), self._code),
            ("version", rule(r"\b(?:(v|V)\.?|(version|Version|ver\.)\s+)(\d+(?:\.\d+)*)(?!\w|\.\d)"), self._version),
            ("version", rule(r"\b(" + "|".join(VERSIONED_NAMES) + r")\s+(\d+\.\d+(?:\.\d+)*)(?!\w|\.\d)"),
             self._named_version),
            ("url", rule(r"(?<![\w.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?!\w|\.\d)"),
             lambda m, text: " dot ".join(self.numbers.digits(p) for p in m.group(1).split("."))),
            ("version", rule(r"(?<![\w.])(\d+(?:\.\d+){2,})(?!\w|\.\d)"), self._dotted_version),
            ("digits", rule(r"\b(ending\s+(?:in|with)|(?<=card\s)ending|last\s+(?:four|4)(?:\s+digits)?|PIN|pin|OTP|otp|"
                            r"[Cc]ode|passcode|[Aa]ccount|[Aa]cct\.?|[Ee]xt\.?|[Ee]xtension|[Ss]erial|[Tt]racking|"
                            r"[Cc]onfirmation|[Rr]eference|[Rr]ef\.?|[Ii]nvoice|[Oo]rder|[Pp]olicy|ID|[Zz]ip|ZIP)"
                            r"((?:\s+(?:number|no\.|code|num\.?|#))?(?:\s+is)?\s*[:#]?\s*)"
                            r"((?=[A-Za-z]*\d)[A-Za-z\d]{3,})(?![\w-])"), self._keyed_digits),
            ("money", rule(rf"([{signs}])\s?{number}\s?(?:-|–|to)\s?\1?{number}"
                           r"(?:\s?(thousand|million|billion|trillion)\b|(bn|BN|tn|[mMkKbB])\b)?"), self._money_range),
            # Ranges (5-10, 2019-20, 3:30-4:30, 5pm-7pm, 1960s-80s) before times and dates, which would cut them apart.
            ("range", rule(r"(?:(?<=\d)|(?<=\d[apAP][mM])|(?<=\d0s))\s?[-–]\s?(?=[" + signs + r"]?\d)"),
             lambda m, text: "to"),
            ("time", rule(r"\b(\d{1,2}):(\d{2}):(\d{2})(?![\d:])"), self._duration),
            ("time", rule(r"\b(\d{1,2})[:.](\d{2})\s?([AaPp])(?:\.\s?|\s?)[Mm]\b(\.)?"), self._time),
            ("time", rule(r"\b(\d{1,2}):(\d{2})\b()(?![:.]\d)"), self._time),
            ("time", rule(r"\b(\d{1,2})\s?([AaPp])(?:\.\s?|\s?)[Mm]\b(\.)?"), self._hour),
            ("date", rule(rf"\b{month}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!:)(?:(,)?\s+(\d{{4}})\b)?"), self._month_day),
            ("date", rule(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{month}(?:,?\s+(\d{{4}})\b)?"), self._day_month),
            ("date", rule(rf"\b{month},?\s+(\d{{4}})\b"), self._month_year),
            ("date", rule(r"\b(" + "|".join(WEEKDAYS) + r")(\.|\b(?=,))"), self._weekday),
            # Addresses: "221 Baker St", "1600 Pennsylvania Ave NW", "Austin, TX 78701".
            ("address", rule(r"\b(\d{1,5})(?:\s+(NE|NW|SE|SW|N|S|E|W)\.?)?(?=\s+(?:[A-Z][a-z]+\s+|\d+(?:st|nd|rd|th)\s+){1,3}"
                             rf"(?:{suffixes}|Dr|St)\b)"), self._house_number),
            ("address", rule(r"\b(Hwy|Highway|Rte|Route|Interstate)\s+(\d{1,4})\b"), self._route),
            ("address", rule(rf"\b({suffixes})\b(\.)?(?:\s+(NE|NW|SE|SW|N|S|E|W)\b(\.)?)?"), self._street_suffix),
            ("abbreviation", rule(r"\b(Dr|St)\b(\.)?"), self._dr_st),
            ("abbreviation", rule(r"\b(" + "|".join(PERSONAL_TITLES) + r")\b\.?"), lambda m, text: PERSONAL_TITLES[m.group(1)]),
            ("abbreviation", rule(r"\b(" + "|".join(TITLES) + r")\b(\.)?(?=\s+[A-Z])"), self._title),
            ("abbreviation", rule(r"\b(e\.g|i\.e|E\.g|I\.e)\.(?=\W|$)"), self._latin),
            ("abbreviation", rule(r"\bet al\b\.?"), lambda m, text: "et al" + self._closing_dot(m, text)),
            ("abbreviation", rule(r"\b(pp|p)\.\s?(?=\d)"), lambda m, text: "pages" if m.group(1) == "pp" else "page"),
            ("abbreviation", rule(r"(?<![\w/])(w/o|w/|b/c)(?=\s|$)"), self._slash_abbreviation),
            ("abbreviation", rule(r"\b(" + "|".join(ABBREVIATIONS) + r")\b(\.)?"), self._abbreviation),
            ("abbreviation", rule(r"\b(" + "|".join(ABBREVIATIONS_WITH_DOT) + r")\.(?=\s|$)"), self._abbreviation),
            ("abbreviation", rule(r"\b(No|no|Nos|nos)\.\s?(?=#?\d)|#(?=\d)"), self._number_sign),
            ("initialism", rule(r"\bPh\.D\.|\b(?:[A-Za-z]\.){2,}"), self._dotted_initialism),
            ("initialism", rule(r"\b([A-Z])\.(?=\s+[A-Z][a-z])"), lambda m, text: m.group(1)),  # "John F. Kennedy"
            ("url", rule(r"(?<=[a-z0-9])\.(?=[a-z])"), lambda m, text: "dot"),  # example.com
            ("roman", rule(r"\b(?=[IVX]{2,}\b)(X{0,3})(IX|IV|V?I{0,3})\b"), self._roman),
            ("money", rule(rf"(?<![\w.])({'|'.join(CURRENCY_CODES)})\s?{number}\b"), self._currency_code),
            ("money", rule(rf"(?<![\d,.]){number}\s?({'|'.join(CURRENCY_CODES)})\b"), self._currency_code_after),
            ("money", rule(rf"([{signs}])\s?(?:{number}|\.(\d+))"
                           r"(?:\s?(thousand|million|billion|trillion)\b|(bn|BN|tn|[mMkKbB])\b)?"), self._money),
            ("money", rule(r"\b(\d{1,2})p\b"), lambda m, text: self._amount(m.group(1), "penny", "pence")),
            ("money", rule(rf"(?<!\d)\b{number}\s?¢"), lambda m, text: self._amount(m.group(1), "cent", "cents")),
            ("percent", rule(rf"(?<![\d,]){number}\s?%"), lambda m, text: self.cardinal(m.group(0)[:-1].rstrip()) + " percent"),
            ("unit", rule(rf"(?<![\d,]){number}\s?(sq\.?\s?(?:ft|m|km|mi|in|yd)|{units})(?![\w/]|/[a-zA-Z])"), self._unit),
            ("unit", rule(rf"(?<![\d,]){number}\s?(?i:({units_any_case}))(?![\w/])"), self._unit),
            ("unit", rule(rf"(?<![\d,]){number}\s?({units})/(?:({per_units})\b)"), self._unit_per),
            ("unit", rule(rf"(?:^|(?<=[\w$£€¥%]))\s?/\s?({per_units})\b"), self._per),
            ("unit", rule(rf"\bper\s+({per_units})\b"), self._per),
            ("fraction", rule(r"(?<![\w/.])(\d{1,2})/(\d{1,2})(?![\w/])"), self._fraction),
            ("ordinal", rule(r"(?<![\d,])(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th|ST|ND|RD|TH)\b"),
             lambda m, text: self.numbers.ordinal(m.group(1))),
            ("year", rule(r"(?<![\w'])'(\d)0s\b"), lambda m, text: _plural_word(self.cardinal(m.group(1) + "0"))),
            ("year", rule(r"\b(1[1-9]|20)(\d)0s\b"), lambda m, text: _plural_word(self.numbers.year(m.group(0)[:4]))),
            ("year", rule(r"\b([1-9])0s\b"), lambda m, text: _plural_word(self.cardinal(m.group(1) + "0"))),
            ("year", rule(r"(?<![\d.,])(1[1-9]\d\d|20\d\d)(?![\d]|[.,]\d)"), lambda m, text: self.numbers.year(m.group(1))),
            ("number", rule(r"(?:^|(?<=\s))\.(\d+)"), lambda m, text: "point " + self.numbers.digits(m.group(1))),
            ("digits", rule(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z\d]+\b"), self._alphanumeric),
            ("number", rule(number), lambda m, text: self.cardinal(m.group(0))),
        ]

    # --- numbers -------------------------------------------------------------------------------

    def cardinal(self, number: str) -> str:
        return self.numbers.cardinal(number)

    def _amount(self, number: str, singular: str, plural: str) -> str:
        return f"{self.cardinal(number)} {singular if self.numbers.is_one(number) else plural}"

    # --- rules: each returns spoken text, a list of (text, spoken) parts, or None to leave the match --

    def _spell_or_word(self, part: str) -> str:
        """A piece of a URL or code: a dictionary word or a long one read, a short unknown one spelled."""
        low = part.lower()
        if low in URL_WORDS:
            return URL_WORDS[low]
        if low.isdigit():
            return self.numbers.digits(low)
        if len(low) == 1 or low in SPELLED_WORDS or (len(low) <= 3 and not (self._is_word(low) and re.search("[aeiouy]", low))):
            return " ".join(low.upper())
        return low

    def _is_word(self, word: str) -> bool:
        return self.lexicon is not None and word in self.lexicon

    def _read_address(self, address: str) -> str:
        """The host and path of a URL, or the parts of an e-mail address: dots, slashes, dashes said."""
        words = []
        for token in re.findall(r"[A-Za-z]+|\d+|[./:_\-@?=&#~%+]", address):
            if token in "./:_-@?=&#~%+":
                words.append({".": "dot", "/": "slash", ":": "colon", "_": "underscore", "-": "dash", "@": "at",
                              "?": "question mark", "=": "equals", "&": "and", "#": "hash", "~": "tilde",
                              "%": "percent", "+": "plus"}[token])
            else:
                words.append(self._spell_or_word(token))
        return " ".join(words)

    def _url(self, m: re.Match, text: str) -> Result:
        url = m.group(0)
        scheme, sep, rest = url.partition("://")
        if not sep:
            return self._read_address(url)
        return f"{' '.join(scheme.upper())} colon slash slash {self._read_address(rest)}"

    def _email(self, m: re.Match, text: str) -> Result:
        return self._read_address(m.group(0))

    def _operand(self, operand: str) -> str:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]?)", operand)
        if m is None:
            return operand.upper()
        return (self.cardinal(m.group(1)) + (" " + m.group(2).upper() if m.group(2) else "")).strip()

    def _math(self, m: re.Match, text: str) -> Result:
        words = []
        for token in re.findall(r"\d+(?:\.\d+)?[a-z]?|[a-z]|[-+*/^=<>]", m.group(0)):
            if token in _OPERATOR_WORDS:
                if token == "-" and (not words or words[-1] in _OPERATOR_WORDS.values()):
                    words.append("minus")  # a sign: "x = -3"
                else:
                    words.append(_OPERATOR_WORDS[token])
            else:
                words.append(self._operand(token))
        return " ".join(words)

    def _phone_group(self, group: str) -> str:
        # Toll-free prefixes are said as hundreds: "one eight hundred".
        return "eight hundred" if group == "800" else self.numbers.digits(group)

    def _phone(self, m: re.Match, text: str) -> Result:
        groups = [g for g in m.groups() if g]
        return " , ".join(self._phone_group(g) if g != "+1" else "plus one" for g in groups)

    def _international_phone(self, m: re.Match, text: str) -> Result:
        groups = [m.group(1), *re.findall(r"\d+", m.group(2))]
        return "plus " + " , ".join(self.numbers.digits(g) for g in groups)

    def _digit_groups(self, m: re.Match, text: str) -> Result:
        """Serial numbers, ISBNs: each group digit by digit, with a pause between groups."""
        return " , ".join(self.numbers.digits(g) for g in m.group(0).split("-"))

    def _code(self, m: re.Match, text: str) -> Result:
        return " dash ".join(self._alphanumeric_words(part) for part in m.group(0).split("-"))

    def _alphanumeric_words(self, token: str, *, digit_by_digit: bool = False) -> str:
        """"ab9453" -> "A B nine four five three", "B12" -> "B twelve", "mp3" -> "M P three"."""
        words = []
        for part in re.findall(r"[A-Za-z]+|\d+", token):
            if part.isdigit():
                words.append(self.cardinal(part) if len(part) <= 2 and not part.startswith("0") and not digit_by_digit
                             else self.numbers.digits(part))
            elif part.lower() not in SPELLED_WORDS and (len(part) > 4 or len(part) == 4 and self._is_word(part.lower())):
                words.append(part.lower())
            else:
                words.append(" ".join(part.upper()))
        return " ".join(words)

    def _alphanumeric(self, m: re.Match, text: str) -> Result:
        return self._alphanumeric_words(m.group(0))

    def _keyed_digits(self, m: re.Match, text: str) -> Result:
        """Digits after "ending in", "PIN", "code", "account" ... are read one by one."""
        key, middle, code = m.group(1), m.group(2), m.group(3)
        if key.lower().rstrip(".") in ("order", "invoice", "policy", "reference", "ref") and code.isdigit() \
                and len(code) < 6 and not middle.strip():
            return None  # "order 1000 pizzas"; "order number 1000" and "order 582133" are numbers
        spoken_key = {"ext": "extension", "acct": "account", "ref": "reference"}.get(key.lower().rstrip("."))
        key_piece = (f"{spoken_key} {middle.strip()}".strip(), True) if spoken_key else (key + middle, False)
        return [key_piece, (self._alphanumeric_words(code, digit_by_digit=True), True)]

    def _version(self, m: re.Match, text: str) -> Result:
        parts = m.group(3).split(".")
        return "version " + " point ".join(self.cardinal(p) for p in parts)

    def _named_version(self, m: re.Match, text: str) -> Result:
        return [(m.group(1), False), (" point ".join(self.cardinal(p) for p in m.group(2).split(".")), True)]

    def _dotted_version(self, m: re.Match, text: str) -> Result:
        return " point ".join(self.cardinal(p) for p in m.group(1).split("."))

    def _duration(self, m: re.Match, text: str) -> Result:
        """1:01:01 -> "one hour one minute and one second" (a clock reading has no seconds)."""
        hours, minutes, seconds = m.group(1), int(m.group(2)), int(m.group(3))
        if minutes > 59 or seconds > 59:
            return None
        parts = [(hours, "hour", "hours"), (str(minutes), "minute", "minutes"), (str(seconds), "second", "seconds")]
        spoken = [self._amount(str(int(n)), one, many) for n, one, many in parts if int(n)]
        if not spoken:
            return "zero seconds"
        return " and ".join([" ".join(spoken[:-1]), spoken[-1]]) if len(spoken) > 1 else spoken[0]

    def _time(self, m: re.Match, text: str) -> Result:
        hour, minute = int(m.group(1)), int(m.group(2))
        meridiem = m.group(3)
        if minute > 59 or hour > (12 if meridiem else 24):
            return None
        words = self.cardinal(str(hour))
        if minute:
            words += " " + ("oh " if minute < 10 else "") + self.cardinal(str(minute))
        elif not meridiem:
            words += " o'clock" if hour <= 12 else " hundred"
        if meridiem:
            words += f" {meridiem.upper()} M" + self._closing_period(m, text)
        return words

    def _hour(self, m: re.Match, text: str) -> Result:
        hour = int(m.group(1))
        if not 1 <= hour <= 12:
            return None
        return f"{self.cardinal(str(hour))} {m.group(2).upper()} M" + self._closing_period(m, text)

    def _closing_period(self, m: re.Match, text: str) -> str:
        """ " ." when the abbreviation's own dot (the match's last group) also ends the sentence
        (not before a time zone: "5 p.m. EST")."""
        if m.group(m.lastindex or 0) != "." or not _ends_sentence(text, m.end()):
            return ""
        return "" if _TIME_ZONE.match(text, m.end()) else " ."

    def _closing_dot(self, m: re.Match, text: str) -> str:
        return " ." if m.group(0).endswith(".") and _ends_sentence(text, m.end()) else ""

    def _date(self, year: Optional[str], month: int, day: Optional[int], *, comma: bool = False,
              day_first: bool = False) -> Result:
        if not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
            return None
        year_words = self.numbers.year(year) if year is not None else ""
        if day is not None and day_first:
            return f"the {self.numbers.ordinal(str(day))} of {MONTHS[month - 1]} {year_words}".strip()
        words = MONTHS[month - 1] + (f" {self.numbers.ordinal(str(day))}" if day is not None else "")
        if year is not None:
            words += (" , " if comma else " ") + year_words
        return words

    def _ymd_date(self, m: re.Match, text: str) -> Result:
        return self._date(m.group(1), int(m.group(3)), int(m.group(4)))

    def _dmy_date(self, m: re.Match, text: str) -> Result:
        """12/25/2020 and 12-25-2020 month first (US) unless the first number cannot be a month;
        dotted dates (01.10.2010) day first, as where they are written."""
        first, sep, second, year = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if sep == "." or first > 12:
            return self._date(year, second, first, day_first=True)
        return self._date(year, first, second)

    def _month_day(self, m: re.Match, text: str) -> Result:
        if m.group(1) in ("May", "March") and m.group(2) is None and not re.match(r"\s+\d", text[m.end(1):m.end(1) + 2]):
            return None
        return self._date(m.group(5), _MONTH_NUMBER[m.group(1)], int(m.group(3)), comma=bool(m.group(4)))

    def _day_month(self, m: re.Match, text: str) -> Result:
        words = self._date(m.group(4), _MONTH_NUMBER[m.group(2)], None)
        day = int(m.group(1))
        if words is None or not 1 <= day <= 31:
            return None
        the = "" if re.search(r"\bthe\s+$", _before(text, m.start()), re.IGNORECASE) else "the "
        period = self._month_period(m.group(2), m, text) if m.group(3) and m.group(4) is None else ""
        return f"{the}{self.numbers.ordinal(str(day))} of {words}{period}"

    def _month_year(self, m: re.Match, text: str) -> Result:
        return self._date(m.group(3), _MONTH_NUMBER[m.group(1)], None)

    def _weekday(self, m: re.Match, text: str) -> Result:
        day = WEEKDAYS[m.group(1)]
        if m.group(1) in ("Sat", "Sun") and not re.match(r"[.,]?\s+(?:" + _MONTH + r"|\d)", text[m.end(1):]):
            return None  # "I sat." / "the Sun."
        return day + (" ." if m.group(2) == "." and re.match(r"\s*\Z", text[m.end():]) else "")

    @staticmethod
    def _month_period(month: str, m: re.Match, text: str) -> str:
        """" ." for the dot after a month that ends the match: always a full stop after a full name
        ("the 4th of July."), after an abbreviation only where a sentence ends ("5 Jan. Then")."""
        return " ." if month.lower() in MONTHS or _ends_sentence(text, m.end()) else ""

    def _route(self, m: re.Match, text: str) -> Result:
        road = {"Hwy": "highway", "Rte": "route"}.get(m.group(1), m.group(1).lower())
        return f"{road} {self.numbers.pairs(m.group(2))}"

    def _house_number(self, m: re.Match, text: str) -> Result:
        words = self.numbers.pairs(m.group(1))
        return words + (f" {DIRECTIONS[m.group(2)]}" if m.group(2) else "")

    def _street_suffix(self, m: re.Match, text: str) -> Result:
        suffix = m.group(1)
        if suffix[0].isupper() and suffix not in STREET_SUFFIXES:
            return None
        if not (_after_name(text, m.start()) or re.search(r"\d(?:st|nd|rd|th)\s+$", _before(text, m.start()))):
            return None  # "Way" and "Ct" not after a street name
        words = STREET_SUFFIXES[suffix]
        if words.isalpha() and suffix == words.capitalize() and not m.group(3):
            return None  # a word already: "Street", "Way"
        if m.group(3):
            words += f" {DIRECTIONS[m.group(3)]}"
        last_dot = m.group(4) or (m.group(2) if not m.group(3) else None)
        return words + (" ." if last_dot and _ends_sentence(text, m.end()) else "")

    def _state(self, m: re.Match, text: str) -> Result:
        if m.group(1) in _STATE_WORDS and not m.group(2):
            return None  # "Yes, OK." / "Go, ME."
        parts: list[tuple[str, bool]] = []
        words = STATES[m.group(1)]
        if m.group(0).startswith(","):
            parts.append((",", True))
        zip_code = " ".join(self.numbers.digits(g) for g in m.groups()[1:] if g)
        if m.group(3):
            zip_code = f"{self.numbers.digits(m.group(2))} dash {self.numbers.digits(m.group(3))}"
        parts.append((f"{words} {zip_code}".strip(), True))
        return parts

    def _dr_st(self, m: re.Match, text: str) -> Result:
        """Dr. and St. before a name are doctor and saint; after a street name, drive and street."""
        street = {"Dr": "drive", "St": "street"}[m.group(1)]
        if _after_name(text, m.start()):
            return street + self._closing_period(m, text)
        if re.match(r"\s+[A-Z]", text[m.end():m.end() + 2]):
            return {"Dr": "doctor", "St": "saint"}[m.group(1)]
        if m.group(1) == "Dr":
            return "doctor" + self._closing_period(m, text)
        return street + self._closing_period(m, text)

    def _title(self, m: re.Match, text: str) -> Result:
        word, dot_optional = TITLES[m.group(1)]
        return word if m.group(2) or dot_optional else None

    def _latin(self, m: re.Match, text: str) -> Result:
        return "for example" if m.group(1).lower() == "e.g" else "that is"

    def _slash_abbreviation(self, m: re.Match, text: str) -> Result:
        return {"w/o": "without", "w/": "with", "b/c": "because"}[m.group(1)]

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

    def _currency(self, sign: str, whole: str, fraction: Optional[str], scale: Optional[str], *,
                  attributive: bool = False) -> str:
        unit, units, cent, cents = CURRENCIES[sign]
        if attributive:  # "a five dollar bill"
            units = unit
        whole = whole.replace(",", "") if whole else "0"
        if scale:  # "$1.5 million" -> "one point five million dollars"
            number = whole + (f".{fraction}" if fraction else "")
            return f"{self.cardinal(number)} {SCALES[scale]} {units}"
        if fraction and (cent is None or len(fraction) > 2):
            return f"{self.cardinal(whole + '.' + fraction)} {units}"
        cents_part = fraction.ljust(2, "0") if fraction else "00"
        if cents_part != "00" and not whole.strip("0"):
            return self._amount(cents_part.lstrip("0"), cent, cents)
        words = self._amount(whole if not whole.strip("0") else whole.lstrip("0"), unit, units)
        return f"{words} {self._amount(cents_part.lstrip('0'), cent, cents)}" if cents_part != "00" else words

    def _money(self, m: re.Match, text: str) -> Result:
        if m.group(4) is not None:  # "$.01"
            return self._currency(m.group(1), "0", m.group(4), None)
        return self._currency(m.group(1), m.group(2), m.group(3), m.group(5) or m.group(6),
                              attributive=_attributive(m, text))

    def _money_range(self, m: re.Match, text: str) -> Result:
        """"$10-20" -> "ten to twenty dollars": the unit is said once, after the range."""
        sign, scale = m.group(1), m.group(6) or m.group(7)
        first = self.cardinal(m.group(2) + (f".{m.group(3)}" if m.group(3) else ""))
        if scale:
            first += " " + SCALES[scale]
        return f"{first} to {self._currency(sign, m.group(4), m.group(5), scale, attributive=_attributive(m, text))}"

    def _currency_code(self, m: re.Match, text: str) -> Result:
        words = self._currency(CURRENCY_CODES[m.group(1)], m.group(2), m.group(3), None)
        return re.sub(r"\bdollar", "U S dollar", words, count=1) if m.group(1) == "USD" else words

    def _currency_code_after(self, m: re.Match, text: str) -> Result:
        words = self._currency(CURRENCY_CODES[m.group(3)], m.group(1), m.group(2), None)
        return re.sub(r"\bdollar", "U S dollar", words, count=1) if m.group(3) == "USD" else words

    def _unit_words(self, symbol: str, number: Optional[str]) -> str:
        key = symbol if symbol in UNITS else re.sub(r"sq\.?\s?", "sq ", symbol)
        singular, plural = UNITS.get(key) or UNITS_ANY_CASE[symbol.lower()]
        return singular if number is not None and self.numbers.is_one(number) else plural

    def _unit(self, m: re.Match, text: str) -> Result:
        number = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
        words = self._unit_words(m.group(3), "1" if _attributive(m, text) else number)
        return f"{self.cardinal(number)} {words}".lower()

    def _unit_per(self, m: re.Match, text: str) -> Result:
        number = m.group(1) + (f".{m.group(2)}" if m.group(2) else "")
        return f"{self.cardinal(number)} {self._unit_words(m.group(3), number)} per {PER_UNITS[m.group(4)]}".lower()

    def _per(self, m: re.Match, text: str) -> Result:
        return f"per {PER_UNITS[m.group(1)]}"

    def _roman(self, m: re.Match, text: str) -> Result:
        values = [{"I": 1, "V": 5, "X": 10}[c] for c in m.group(0)]
        n = sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))
        before = re.search(r"([A-Za-z]+)\s+$", _before(text, m.start()))
        if before and before.group(1).lower() in ROMAN_COUNTED:
            return self.cardinal(str(n))
        if before and before.group(1)[0].isupper():
            return "the " + self.numbers.ordinal(str(n))
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
            name = self.numbers.ordinal(str(denominator)) + ("" if numerator == 1 else "s")
        return f"{self.cardinal(str(numerator))} {name}"

    # --- the pipeline ----------------------------------------------------------------------------

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))

    def tokens(self, text: str) -> list[str]:
        """Text -> normalized tokens (see the module docstring). Unspeakable characters are dropped
        with a warning; text with nothing speakable gives an empty list."""
        return [token for token, _, _ in self.annotate(text)]

    def annotate(self, text: str, *, rules: bool = True, spell: Container[str] = (),
                 warn: bool = True) -> list[tuple[str, str, str]]:
        """Text -> (token, rule class, written source) per token. Classes are RULE_CLASSES, or for
        what no rule rewrote: "word", "letters" (a spelled initialism), "punctuation", "symbol".
        For text another normalizer has already read (tts/text/nemo.py): ``rules=False`` skips the
        rules and only tokenizes (cleaning, casing, initialisms, punctuation, symbols,
        transliteration), and the words in ``spell`` are read letter by letter ("AM", "A").
        ``warn=False``: no warnings about transliterated or dropped characters (a check of a text
        that will be read again, and warned about then)."""
        if not isinstance(text, str):
            raise TypeError(f"normalize() takes a str, got {type(text).__name__}")
        text = self._clean(text, warn=warn)
        pieces: list[Piece] = [(text, None, text)]
        for rule_class, pattern, handler in self._rules if rules else ():
            pieces = self._apply(pieces, rule_class, pattern, handler)
        has_lower = any(c.islower() for c in text)
        tokens: list[tuple[str, str, str]] = []
        dropped: list[str] = []
        for piece, rule_class, source in pieces:
            if rule_class is None:
                tokens.extend(self._words(piece, has_lower, dropped, spell))
            else:
                tokens.extend((token, rule_class, source) for token in piece.split())
        if dropped and warn:
            shown = text if len(text) <= 80 else text[:77] + "..."
            logger.warning("dropped unspeakable characters %s from %r", " ".join(dict.fromkeys(dropped)), shown)
        return self._collapse_punctuation(tokens)

    @staticmethod
    def _clean(text: str, *, warn: bool = True) -> str:
        text = re.sub(r"(\d)\s*([½¼¾⅓⅔⅛])", lambda m: f"{m.group(1)} and {FRACTIONS[m.group(2)][1]}", text)
        text = "".join(FRACTIONS[c][0] if c in FRACTIONS else c for c in text)
        text = re.sub(r"(?<=\d)\s?(km|cm|mm|ft|mi|m)²", r" sq \1", text)
        text = text.translate(_CHARACTERS)
        # Accents: café -> cafe. NFKD also unfolds ligatures and compatibility forms (ﬁ, ℃, №, ①).
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
        text = text.translate(_CHARACTERS)
        if not text.isascii():
            text = Normalizer._ascii_letters_and_digits(text, warn=warn)
        text = re.sub(r"(?<=\d)\s?[–—]\s?(?=\d)", "-", text)  # 5–10 is a range
        text = re.sub(r"\s*(?:[–—―]|--+)\s*", " , ", text)  # a dash between clauses is a pause
        text = re.sub(r"\.{2,}", ".", text)
        return " ".join(text.split())

    @staticmethod
    def _ascii_letters_and_digits(text: str, *, warn: bool = True) -> str:
        """Digits of any script -> ASCII digits; letters of other scripts transliterated (logged);
        control and format characters -> spaces. Symbols are kept for the rules (£, °) or the warning."""
        out: list[str] = []
        foreign: list[str] = []
        run: list[str] = []

        def flush():
            if run:
                written = "".join(run)
                spoken = _transliterate(written)
                foreign.append(f"{written!r} as {spoken.strip()!r}" if spoken.strip() else f"{written!r} dropped")
                out.append(f" {spoken} " if spoken.strip() else " ")
                run.clear()

        for c in text:
            if c.isascii():
                flush()
                out.append(c)
                continue
            category = unicodedata.category(c)
            if category == "Nd":
                flush()
                out.append(str(unicodedata.decimal(c)))
            elif category[0] in "LNM":
                run.append(c)
            elif category[0] in "CZ":
                flush()
                out.append(" ")
            else:
                flush()
                out.append(c)
        flush()
        if foreign and warn:
            logger.warning("read letters of other scripts: %s", ", ".join(dict.fromkeys(foreign)))
        return "".join(out)

    @staticmethod
    def _apply(pieces: list[Piece], rule_class: str, pattern: re.Pattern,
               handler: Callable[[re.Match, str], Result]) -> list[Piece]:
        out: list[Piece] = []
        for text, done, source in pieces:
            if done is not None:
                out.append((text, done, source))
                continue
            position = 0
            for m in pattern.finditer(text):
                replacement = handler(m, text)
                if replacement is None:
                    continue
                out.append((text[position:m.start()], None, text[position:m.start()]))
                if isinstance(replacement, str):
                    out.append((replacement, rule_class, m.group(0)))
                else:
                    out.extend((part, rule_class if spoken else None, m.group(0) if spoken else part)
                               for part, spoken in replacement)
                position = m.end()
            out.append((text[position:], None, text[position:]))
        return [piece for piece in out if piece[0].strip()]

    def _words(self, text: str, has_lower: bool, dropped: list[str],
               spell: Container[str] = ()) -> list[tuple[str, str, str]]:
        """Tokenize a raw piece: words (cased as described in the module docstring, those in
        ``spell`` letter by letter), punctuation and symbols; characters that cannot be read are
        appended to ``dropped``."""
        out: list[tuple[str, str, str]] = []
        for m in re.finditer(r"[A-Za-z]+(?:'[A-Za-z]+)*|[0-9]+|\S", text):
            token = m.group(0)
            if token in spell:
                out.extend((letter.upper(), "letters", token) for letter in token if letter.isalpha())
            elif token[0].isascii() and token[0].isalpha():
                cased = self._cased(token, has_lower)
                kind = "letters" if len(cased) > 1 or (cased[0].isupper() and len(cased[0]) == 1) else "word"
                out.extend((word, kind, token) for word in cased)
            elif token[0].isascii() and token.isdigit():  # digits glued to something no rule matched
                out.extend((word, "number", token) for word in self.cardinal(token).split())
            elif token in PUNCTUATION_STRENGTH:
                out.append((token, "punctuation", token))
            elif token in SYMBOL_WORDS:
                out.extend((word, "symbol", token) for word in SYMBOL_WORDS[token].split())
            elif token == "-" and not text[m.start() - 1:m.start()].isspace() \
                    and not text[m.end():m.end() + 1].isspace():
                continue  # a hyphen inside a compound (well-known, COVID-19), not a dash between spaces
            elif token in PAUSES:
                out.append((",", "punctuation", token))
            elif token not in SILENT:
                dropped.append(token)
        return out

    def _cased(self, word: str, has_lower: bool) -> list[str]:
        if word.lower() in SPELLED_WORDS:
            return list(word.upper())
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
    def _collapse_punctuation(tokens: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Of consecutive punctuation the strongest stays; none at the start, no comma at the end."""
        out: list[tuple[str, str, str]] = []
        for item in tokens:
            token = item[0]
            if token not in PUNCTUATION_STRENGTH:
                out.append(item)
            elif out and out[-1][0] in PUNCTUATION_STRENGTH:
                if PUNCTUATION_STRENGTH[token] > PUNCTUATION_STRENGTH[out[-1][0]]:
                    out[-1] = item
            elif out:
                out.append(item)
        while out and out[-1][0] in (",", ":", ";"):
            out.pop()
        return out


def normalize(text: str, *, lexicon: Optional[Container[str]] = None) -> str:
    """Written English -> space-separated spoken tokens; see ``Normalizer``. Returns "" when nothing
    in the text can be spoken."""
    return Normalizer(lexicon=lexicon)(text)
