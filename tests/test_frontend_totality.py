"""The frontend is total over Unicode and linear in its input: no crash, no silent loss, no blow-up."""

import logging
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts.errors import TTSError
from tts.text import Frontend, TextError
from tts.text.numbers import NumberWords
from tts.text.symbols import SymbolTable


@pytest.fixture(scope="module")
def frontend():
    f = Frontend()
    f.describe("warm up")  # the dictionary and the neural model load once
    return f


_TABLE = frozenset(SymbolTable.default().symbols)
# Pieces that reach the number rules, mixed into arbitrary Unicode.
_PIECES = st.sampled_from(["1,000th", "9" * 50 + "th", "$", "£1.5b", "555-123-4567", "1-2=5", "3.14.15", "1:01:01",
                           "Jan. 3rd", "12KG", "http://a.b/c_d", "x@y.com", "፪", "٣٤", "Москва", "北京", "Dr.",
                           "St", "-", ".", "0", "%", "/kg", "IV", "5pm-7 pm", "1960s-80s", "p. 45", "2016/07/03"])
_TEXT = st.lists(st.one_of(st.text(max_size=12), _PIECES, st.text(alphabet="0123456789", min_size=1, max_size=60)),
                 max_size=8).map(" ".join)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT)
def test_any_text_gives_phonemes_of_the_table_or_a_text_error(frontend, text):
    logging.disable(logging.WARNING)
    try:
        words, phonemes = frontend.describe(text)
    except TextError:
        return
    finally:
        logging.disable(logging.NOTSET)
    assert words and phonemes
    assert set(phonemes) <= _TABLE
    assert words.isascii()


@pytest.mark.parametrize("text, words", [
    ("፪ cats", "two cats"),  # Ethiopic digit: isdigit() is true, int() refuses it
    ("٣٤ cats", "thirty four cats"),  # Arabic-Indic digits
    ("② cats", "two cats"),
    ("the " + "1" * 40 + "th", "the " + "one " * 39 + "first"),  # beyond what inflect can make an ordinal of
    ("room " + "7" * 5000, "room " + " ".join(["seven"] * 5000)),  # over Python's 4,300-digit int() limit
], ids=["ethiopic", "arabic-indic", "circled", "long-ordinal", "5000-digits"])
def test_digits_of_any_script_and_any_length_are_read(frontend, text, words):
    assert frontend.normalize(text) == words


def test_check_raises_as_reading_would_but_quietly(frontend, caplog):
    with caplog.at_level(logging.WARNING, logger="tts.text.normalize"):
        frontend.check("Москва 🙂")
        with pytest.raises(TextError, match="nothing speakable"):
            frontend.check("🙂 ©")
        with pytest.raises(TypeError):
            frontend.check(123)
    assert caplog.records == []


def test_non_latin_letters_are_transliterated_with_a_warning(frontend, caplog):
    with caplog.at_level(logging.WARNING, logger="tts.text.normalize"):
        assert frontend.normalize("Москва") == "moskva"
    assert "Москва" in caplog.text and "Moskva" in caplog.text
    assert frontend.normalize("Αθήνα and 北京") == "athina and beijing"


@pytest.mark.parametrize("text", ["🙂🙂", "\u200f\u202e", "\x00\x01", "···", "🙂 ... ©"])
def test_nothing_speakable_is_a_text_error_and_a_tts_error(frontend, text):
    with pytest.raises(TextError, match="nothing speakable|empty"):
        frontend.describe(text)
    assert issubclass(TextError, TTSError)


def test_long_digit_runs_cost_linear_time(frontend):
    """Not a timing assertion on the machine's speed: the 8x longer run may not cost over 24x. CPU
    time, not wall time: on a loaded machine a run may wait for a core for longer than it works."""
    def cost(n):
        text = "".join("0123456789"[(i * 7) % 10] for i in range(n))
        start = time.process_time()
        frontend.describe(text)
        return time.process_time() - start

    small, large = min(cost(2000) for _ in range(3)), min(cost(16000) for _ in range(3))
    assert large < 24 * small + 0.05, (small, large)


@pytest.mark.parametrize("digits, cardinal, ordinal", [
    ("0", "zero", "zeroth"), ("12", "twelve", "twelfth"), ("20", "twenty", "twentieth"),
    ("101", "one hundred one", "one hundred first"), ("1000", "one thousand", "one thousandth"),
    ("007", "zero zero seven", "zero zero seventh"),
])
def test_number_words(digits, cardinal, ordinal):
    numbers = NumberWords()
    assert numbers.cardinal(digits) == cardinal
    assert numbers.ordinal(digits) == ordinal
