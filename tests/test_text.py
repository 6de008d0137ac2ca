"""The English frontend: normalization, G2P (dictionary, neural OOV model, homographs), symbol table."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from tts.text import Frontend, SymbolTable, TextError, normalize
from tts.text import g2p as g2p_module
from tts.text.g2p import G2P, DataFileError, NeuralG2P, read_data_file
from tts.text.symbols import PHONEMES


@pytest.fixture(scope="module")
def frontend():
    return Frontend()


NORMALIZATION = [
    # cardinals, thousands separators, decimals, negatives
    ("I have 42 cats.", "i have forty two cats ."),
    ("The city has 1,234,567 people.", "the city has one million two hundred thirty four thousand five hundred sixty seven people ."),
    ("Pi is 3.14.", "pi is three point one four ."),
    ("It is -5 outside.", "it is minus five outside ."),
    ("Room 007 and .5", "room zero zero seven and point five"),
    # ordinals
    ("He came 1st, she came 22nd, then 3rd and 11th.", "he came first , she came twenty second , then third and eleventh ."),
    # currency
    ("It costs $3.50.", "it costs three dollars fifty cents ."),
    ("$1 or $0.99 or $2.5 million", "one dollar or ninety nine cents or two point five million dollars"),
    ("£1 and £2.50 and €1.20 and 50p", "one pound and two pounds fifty pence and one euro twenty cents and fifty pence"),
    # percentages
    ("Growth was 50% or 3.5%.", "growth was fifty percent or three point five percent ."),
    # years and decades
    ("In 1999, 2008, 2010 and 1905.", "in nineteen ninety nine , two thousand eight , twenty ten and nineteen oh five ."),
    ("The 2010s and the 1990s and the '90s.", "the twenty tens and the nineteen nineties and the nineties ."),
    # dates
    ("On January 5, 2020 we met.", "on january fifth , twenty twenty we met ."),
    ("It was 5 Jan.", "it was the fifth of january ."),
    ("By 2020-01-05.", "by january fifth twenty twenty ."),
    ("The 4th of July. On 5 Jan. 2020, in May 2020.", "the fourth of july . on the fifth of january twenty twenty , in may twenty twenty ."),
    # times
    ("Meet at 3:30 pm or 15:45.", "meet at three thirty P M or fifteen forty five ."),
    ("See you at 5 p.m. Then we leave.", "see you at five P M . then we leave ."),
    # abbreviations
    ("Dr. Smith lives on Elm Dr.", "doctor smith lives on elm drive ."),
    ("Mr. and Mrs. Jones met Ms. Lee at St. Paul's.", "mister and missus jones met miz lee at saint paul's ."),
    ("Cats vs. dogs, e.g. pets, i.e. animals, etc.", "cats versus dogs , for example pets , that is animals , et cetera ."),
    ("No. 5 is approx. 20 km away.", "number five is approximately twenty kilometers away ."),
    ("John Smith Jr. lives in the U.S.", "john smith junior lives in the U S ."),
    # initialisms: spelled when the dictionary lacks them, read when it has them
    ("The XYZ and NASA.", "the X Y Z and nasa ."),
    ("Two XYZs and two CDs.", "two X Y Zs and two cds ."),
    ("THIS IS SHOUTING.", "this is shouting ."),
    # units
    ("It weighs 3 kg, goes 60 mph, 1 ft tall, 20°C.",
     "it weighs three kilograms , goes sixty miles per hour , one foot tall , twenty degrees celsius ."),
    # Unicode quotes, dashes, ellipses, whitespace, accents
    ("“Quotes” and ‘single’ — dashes – and… more", "quotes and single , dashes , and . more"),
    ("  lots \t of\n space  ", "lots of space"),
    ("Café naïve Zürich straße", "cafe naive zurich strasse"),
    ("Wait... what?! (Maybe)", "wait . what ? maybe"),
    # ranges, fractions, Roman numerals, hyphens, symbols
    ("Pages 10-20, 1/2 and 24/7", "pages ten to twenty , one half and twenty four seven"),
    ("World War II and Henry VIII", "world war two and henry the eighth"),
    ("A well-known COVID-19 case & more", "a well known covid nineteen case and more"),
]


@pytest.mark.parametrize("text, expected", NORMALIZATION)
def test_normalize(frontend, text, expected):
    assert frontend.normalize(text) == expected


def test_module_normalize_leaves_initialisms_to_g2p(frontend):
    # Without a dictionary, an all-caps word stays uppercase and the G2P step decides: same phonemes.
    assert normalize("The XYZ paid $5.") == "the XYZ paid five dollars ."
    assert G2P().phonemize(normalize("The XYZ").split()) == frontend.phonemize("The XYZ")


def test_unspeakable_characters_are_dropped_with_a_warning(frontend, caplog):
    with caplog.at_level(logging.WARNING, logger="tts.text.normalize"):
        assert frontend.normalize("I 🙂 you ©") == "i you"
    assert len(caplog.records) == 1 and "🙂" in caplog.records[0].getMessage()


@pytest.mark.parametrize("text, message", [("", "the text is empty"), ("   \n", "the text is empty"),
                                           ("🙂🙂", "nothing speakable in the text: '🙂🙂'"),
                                           ("...?!", "nothing speakable in the text: '...?!'")])
def test_unspeakable_text_raises_text_error(frontend, text, message, caplog):
    for method in (frontend.normalize, frontend.phonemize, frontend.describe):
        with pytest.raises(TextError) as err:
            method(text)
        assert str(err.value) == message
    assert issubclass(TextError, ValueError)


@pytest.mark.parametrize("word, phones", [("hello", "HH AH0 L OW1"), ("world", "W ER1 L D"),
                                          ("speech", "S P IY1 CH"), ("don't", "D OW1 N T")])
def test_dictionary_words(frontend, word, phones):
    assert frontend.phonemize(word) == phones.split()


def test_letters_of_initialisms_use_cmu_letter_names(frontend):
    assert frontend.phonemize("XYZ") == "EH1 K S | W AY1 | Z IY1".split()
    assert frontend.phonemize("at 3 am") == "AE1 T | TH R IY1 | EY1 | EH1 M".split()  # the letter A, not "a"


def test_phonemes_have_word_boundaries_and_punctuation(frontend):
    words, phonemes = frontend.describe("Hello, world.")
    assert words == "hello , world ."
    assert phonemes == "HH AH0 L OW1 , | W ER1 L D .".split()


# g2p-en's own predictions for these words (its G2p.predict), which the numpy port must reproduce.
@pytest.mark.parametrize("word, phones", [("zorblatt", "Z AO1 R B AH0 L T"),
                                          ("activationist", "AE2 K T IH0 V EY1 SH AH0 N IH0 S T"),
                                          ("snarkle", "S N AA1 R K AH0 L")])
def test_out_of_vocabulary_words_use_the_neural_model(frontend, word, phones):
    assert word not in G2P().lexicon
    assert frontend.phonemize(word) == phones.split()
    assert all(p in SymbolTable.default() for p in frontend.phonemize(word))


def test_possessive_of_unknown_word(frontend):
    assert frontend.phonemize("zorblatt's") == "Z AO1 R B AH0 L T S".split()


@pytest.mark.parametrize("text, word, phones", [
    ("I want to live here.", "live", "L IH1 V"),
    ("It was a live concert.", "live", "L AY1 V"),
    ("I will record it.", "record", "R IH0 K AO1 R D"),
    ("It is a new record.", "record", "R EH1 K ER0 D"),
    ("I want to present it.", "present", "P R IY0 Z EH1 N T"),
    ("She got a present.", "present", "P R EH1 Z AH0 N T"),
    ("I will lead the team.", "lead", "L IY1 D"),
    ("It is a lead pipe.", "lead", "L EH1 D"),
    ("She read it yesterday.", "read", "R EH1 D"),
    ("I have read it.", "read", "R EH1 D"),
    ("I will read it.", "read", "R IY1 D"),
    ("Close the door.", "close", "K L OW1 Z"),
    ("We live close to it.", "close", "K L OW1 S"),
    ("I object to that.", "object", "AH0 B JH EH1 K T"),
    ("The object fell.", "object", "AA1 B JH EH0 K T"),
    ("I am content.", "content", "K AH0 N T EH1 N T"),
    ("The content is good.", "content", "K AA1 N T EH0 N T"),
])
def test_homographs(frontend, text, word, phones):
    words = frontend.normalize(text).split()
    per_word = " ".join(frontend.phonemize(text)).rstrip(" .").split(" | ")
    assert per_word[words.index(word)] == phones


def test_inline_pronunciations_in_braces(frontend):
    # ARPAbet in curly braces is spoken as written (NVIDIA's Tacotron 2 reads it so); the text
    # around it is normalized as before, with the whole sentence in view
    words, phones = frontend.describe("I paid $5 for {T AH0 M EY1 T OW2} on Jan. 5.")
    assert words == "i paid five dollars for {T AH0 M EY1 T OW2} on january fifth ."
    assert " ".join(phones).startswith("AY1 | P EY1 D | F AY1 V | D AA1 L ER0 Z | F AO1 R | T AH0 M EY1 T OW2 | AA1 N")
    assert frontend.phonemize("{HH AH0 L OW1}, {W ER1 L D}!") == ["HH", "AH0", "L", "OW1", ",", "|", "W", "ER1",
                                                                 "L", "D", "!"]
    token = frontend.explain("Say {HH AH0 L OW1}.")["tokens"][1]
    assert token == {"token": "{HH AH0 L OW1}", "class": "phonemes", "written": "{HH AH0 L OW1}",
                     "phonemes": ["HH", "AH0", "L", "OW1"]}
    # all-capital text keeps its own casing rules around a span
    assert frontend.normalize("SAY {HH AH0 L OW1} NOW.") == frontend.normalize("SAY HELLO NOW.").replace(
        "hello", "{HH AH0 L OW1}")
    # braces around anything that is not ARPAbet are text, as before
    assert frontend.normalize("Code { return x } here.") == "code , return x , here ."


def test_warnings_quote_the_text_as_written_around_inline_pronunciations(frontend, caplog):
    with caplog.at_level("WARNING", logger="tts.text.normalize"):
        assert frontend.normalize("Say {HH AH0 L OW1} 🙂 now.") == "say {HH AH0 L OW1} now ."
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["dropped unspeakable characters 🙂 from 'Say {HH AH0 L OW1} 🙂 now.'"], messages


@pytest.mark.parametrize("text, message", [
    ("Say {HH AH L OW1}.", "{HH AH L OW1}: the vowel AH needs its stress: AH0 (none), AH1 (primary) or AH2"),
    ("Say {HH AX0 L OW1}.", "{HH AX0 L OW1}: 'AX0' is not an ARPAbet phoneme; consonants are B CH D"),
])
def test_a_misspelled_inline_pronunciation_says_what_is_wrong(frontend, text, message):
    with pytest.raises(TextError) as error:
        frontend.phonemize(text)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_all_phonemes_are_in_the_default_symbol_table(frontend):
    text = "Dr. Smith paid $3.50 on Jan. 5, 2020 for XYZ's quizzaciously blorfed tensorflow. Really?!"
    phonemes = frontend.phonemize(text)
    table = SymbolTable.default()
    assert set(phonemes) <= set(table.symbols)
    ids = frontend.text_to_ids(text, table)
    assert ids[-1] == table.eos_id and table.pad_id not in ids
    assert table.decode(ids) == phonemes


def test_symbol_table_layout_and_round_trip():
    table = SymbolTable.default()
    assert len(PHONEMES) == 24 + 15 * 3 and len(table) == 3 + 6 + 69
    assert table.pad_id == 0 and table.symbols[0] == "<pad>" and table.symbols[table.eos_id] == "<eos>"
    assert {",", ".", "?", "!", ";", ":", "|", "AA0", "AA1", "AA2", "ZH"} <= set(table.symbols)
    phonemes = ["HH", "AH0", "L", "OW1", ",", "|", "W", "ER1", "L", "D", "?"]
    ids = table.encode(phonemes)
    assert len(ids) == len(phonemes) + 1 and ids[-1] == table.eos_id
    assert table.decode(ids) == phonemes
    assert table.decode(ids + [table.pad_id] * 3) == phonemes
    restored = SymbolTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert restored == table and restored.encode(phonemes) == ids


def test_symbol_table_errors():
    table = SymbolTable.default()
    with pytest.raises(ValueError, match="'QQ'"):
        table.encode(["HH", "QQ"])
    with pytest.raises(ValueError, match="999"):
        table.decode([999])
    good = table.to_dict()
    for bad, message in [({**good, "extra": 1}, "keys"), ({"symbols": good["symbols"]}, "keys"),
                         ({**good, "pad_id": 1}, "pad_id must be 0"), ({**good, "eos_id": 500}, "eos_id"),
                         ({**good, "symbols": good["symbols"] + ["AA0"]}, "duplicate"),
                         ({**good, "symbols": ["<eos>", "<pad>"], "eos_id": 0}, "eos_id and pad_id"),
                         ({**good, "symbols": "AA0 AA1"}, "must be a list")]:
        with pytest.raises(ValueError, match=message):
            SymbolTable.from_dict(bad)


def test_a_voice_table_missing_a_symbol_names_it(frontend):
    table = SymbolTable([s for s in SymbolTable.default().symbols if s != "?"])
    with pytest.raises(ValueError, match=r"'\?'"):
        frontend.text_to_ids("Really?", table)


def test_data_files_are_checked_against_their_hash():
    assert read_data_file(*g2p_module.HOMOGRAPHS).startswith(b"#")
    with pytest.raises(DataFileError, match="SHA-256"):
        read_data_file("g2p_en", "homographs.en", "0" * 64)
    with pytest.raises(DataFileError, match="not installed"):
        read_data_file("no_such_package_xyz", "data.txt", "0" * 64)


def test_a_damaged_install_is_one_line_at_the_cli(monkeypatch, capsys):
    from tts.cli import main

    def damaged(package, relative, sha256):
        raise DataFileError(f"{relative} has SHA-256 0000, expected {sha256[:8]}: install the pinned version of {package}")

    monkeypatch.setattr(g2p_module, "read_data_file", damaged)
    assert main(["phonemize", "Hello."]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tts phonemize: error: ") and "install the pinned" in err


def test_cmudict_parse_keeps_first_readings_and_drops_comments():
    text = "read R IY1 D\nread(2) R EH1 D\nzebra Z IY1 B R AH0 # a comment\nzebra Z EH1 B R AH0\n\n"
    assert g2p_module.parse_cmudict(text) == {"read": ("R", "IY1", "D"), "zebra": ("Z", "IY1", "B", "R", "AH0")}
    with pytest.raises(DataFileError, match="'odd' has a phoneme outside the symbol set: 'XX9'"):
        g2p_module.parse_cmudict("odd AA1 XX9\n")


def test_data_is_read_once_per_g2p_object(monkeypatch):
    calls = []
    real = g2p_module.read_data_file
    monkeypatch.setattr(g2p_module, "read_data_file", lambda *args: calls.append(args[1]) or real(*args))
    g2p = G2P()
    assert calls == []  # lazy
    for _ in range(2):
        g2p.phonemize(["the", "zorblatt", "read"])
    assert sorted(calls) == ["checkpoint20.npz", "data/cmudict.dict", "homographs.en"]


def test_neural_model_rejects_a_wrong_checkpoint():
    import numpy as np

    with pytest.raises(DataFileError, match="enc_emb"):
        NeuralG2P({"enc_w_hh": np.zeros((768, 256), np.float32)})


def test_frontend_is_offline_quiet_and_light():
    """A fresh interpreter with the network cut and nltk unimportable: no connection attempt, nothing
    on stderr, and neither nltk, g2p_en's code, cmudict's code nor torch is imported."""
    script = textwrap.dedent("""
        import socket, sys
        def refuse(*args, **kwargs):
            raise AssertionError("network access attempted")
        socket.socket.connect = socket.socket.connect_ex = refuse
        socket.create_connection = socket.getaddrinfo = refuse
        sys.modules["nltk"] = None  # any import of nltk fails
        from tts.text import Frontend
        words, phonemes = Frontend().describe("Dr. Smith will record 42 zorblatts in the U.S.")
        print(words)
        print(" ".join(phonemes))
        print(sorted(m for m in ("nltk", "g2p_en", "cmudict", "torch") if sys.modules.get(m)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    words, phonemes, imported = result.stdout.splitlines()
    assert words == "doctor smith will record forty two zorblatts in the U S ."
    assert "R IH0 K AO1 R D" in phonemes
    assert imported == "[]"


def test_frontend_prints_nothing(capfd):
    Frontend().describe("A quiet test of 3 words, with zorblatt.")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("text, spoken", [
    ("Gov. Brown spoke today.", "governor brown spoke today ."),
    ("Sen. Smith met Insp. Morse.", "senator smith met inspector morse ."),
    ("See fig. 3 and Sec. 4 here.", "see figure three and section four here ."),
    ("Acme Inc. Then we left.", "acme incorporated . then we left ."),
])
def test_sentences_are_cut_where_the_normalizer_reads_them(frontend, text, spoken):
    # The splitter's abbreviations are the normalizer's own (tables.py): "Gov." | "Brown spoke" was
    # read "gov . brown spoke" when the splitter kept a shorter list of its own.
    from tts.text.sentences import split_sentences

    assert " ".join(frontend.normalize(s) for s in split_sentences(text)) == spoken


def test_one_table_of_punctuation_and_abbreviations():
    from tts.text import pos, sentences, tables
    from tts.text.symbols import PUNCTUATION

    assert set(PUNCTUATION) == set(tables.PUNCTUATION_STRENGTH) == pos.PUNCTUATION
    assert set(tables.SENTENCE_PUNCTUATION + tables.CLAUSE_PUNCTUATION) == set(PUNCTUATION)
    # every title and abbreviation the normalizer reads keeps its dot inside the sentence
    for word in (*tables.PERSONAL_TITLES, *tables.TITLES, *tables.ABBREVIATIONS_WITH_DOT, "Dr", "St", "No"):
        assert sentences.split_sentences(f"We saw {word}. Smith there.") == [f"We saw {word}. Smith there."], word
    assert sentences.split_sentences("We ate. Smith left.") == ["We ate.", "Smith left."]
