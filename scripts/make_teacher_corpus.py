"""Render the teacher corpus: WordNet's example sentences spoken by Festival's US English HTS voice.

    python3 scripts/make_teacher_corpus.py --out data/teacher --count 12000 --test-count 100 --dev-count 60

No speech corpus can be downloaded here, so one is rendered in the LJSpeech layout:

    OUT/metadata.csv    id|text|normalized text (the text has no digits, so both columns agree)
    OUT/wavs/ID.wav     22050 Hz mono 16-bit, silence trimmed to a 50 ms margin, fixed speech level
    OUT/test.txt        id|text of --test-count held-out items (not in metadata.csv; wavs/ has them
                        too, for use as references)
    OUT/dev.txt         id|text of --dev-count more held-out items (the ones after the training
                        items), for choosing settings without looking at test.txt
    OUT/LICENSES.txt    the Debian copyright files of the voice, lexicons, Festival and WordNet
    OUT/corpus.json     the settings and a hash of the plan, so a rerun never mixes two plans

Text: the quoted examples in Debian's wordnet-base (/usr/share/wordnet/data.{noun,verb,adj,adv}),
filtered (six or more words, letters and plain punctuation only, no acronyms, a small blocklist),
shuffled with --seed and joined into items of up to --max-chars characters (about 10 s) so
lengths spread instead of bunching at ~3 s. The plan is the same for every --count: train items
are the first N, test items the last K, so ids stay stable and finished wavs are reused on a rerun.

Audio: one `festival -b` process renders a chunk of sentences (a process per sentence is ~3x
slower); festival exits 0 even when it writes nothing, so every file is checked, failures are
rendered once more, then dropped and counted. The Debian packages are installed with apt-get when
missing. Progress goes to stderr; the last line on stdout is JSON:
{count, test_count, dev_count, hours, dropped, seconds_taken}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tts.audio import AudioError, atomic_write, load_wav, save_wav
from tts.config import AudioConfig

FORMAT = 1  # bump when the text plan or the audio processing changes: old corpora are then refused
VOICE = "cmu_us_slt_arctic_hts"
VOICE_DIR = Path("/usr/share/festival/voices/us") / VOICE
WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
PACKAGES = ("festival", "festvox-us-slt-hts", "wordnet-base")
# Every package whose data shapes the audio or the text; their copyright files go into LICENSES.txt.
LICENSED_PACKAGES = ("festvox-us-slt-hts", "festival", "festlex-cmu", "festlex-poslex", "wordnet-base")

MIN_WORDS = 6
MAX_CHARS = 170  # the voice speaks ~17 characters a second (0.058 s each + 0.04 s): 170 is about 10 s
TRIM_TOP_DB = 40.0  # leading/trailing audio this far below the loudest frame is silence
TRIM_MARGIN_S = 0.05
TARGET_DBFS = -20.0  # RMS of the frames above the trim threshold (the speech, not the pauses)
PEAK_LIMIT = 0.98
SILENT_PEAK = 10 ** (-50 / 20)  # a render whose peak is below -50 dBFS holds no speech
MIN_SECONDS = 0.3

ALLOWED = re.compile(r"[A-Za-z ,.?!;'-]+")
WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*'?")
# Slurs, profanity and sexual terms; matched against whole lowercase words.
BLOCKLIST = frozenset("""
    nigger niggers nigga negro negroes coon coons darky darkie kike spic chink gook jap wop dago kraut
    fag fags faggot faggots dyke dykes homo homos tranny retard retards retarded spastic cripple
    cunt fuck fucks fucked fucker fucking shit shits shitty bitch bitches bastard bastards whore whores
    slut sluts cock cocks dick dicks pussy tits penis penises vagina vaginas rape raped rapes rapist
    raping piss pissed pissing asshole arse crap damn damned goddamn hell sex sexual sexually sexy
    orgasm masturbate masturbation prostitute prostitutes prostitution porn pornography erotic
    nazi nazis hitler
""".split())


class SetupError(RuntimeError):
    """Festival, the voice or WordNet is missing and cannot be installed; the message is one line."""


# ---------------------------------------------------------------------------------------------
# Text


def extract_sentences(wordnet_dir: Path = WORDNET_DIR) -> list[str]:
    """The unique quoted examples in WordNet's data files, sorted (set order is not reproducible)."""
    sentences = set()
    for name in WORDNET_FILES:
        path = Path(wordnet_dir) / name
        if not path.is_file():
            raise SetupError(f"{path} not found: install wordnet-base")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):  # the licence header: lines start with two spaces
                    continue
                _, bar, gloss = line.partition(" | ")
                if bar:
                    sentences.update(" ".join(s.split()) for s in re.findall(r'"([^"]+)"', gloss))
    sentences.discard("")
    return sorted(sentences)


def clean_sentence(sentence: str, min_words: int = MIN_WORDS, max_chars: int = MAX_CHARS) -> Optional[str]:
    """A sentence fit to speak, capitalised and ending in punctuation; None to drop it.

    Dropped: fewer than min_words words or longer than max_chars; digits or symbols other than
    letters and , . ? ! ; ' - (WordNet's `quotes', ellipses, formulas); acronyms (two or more
    capitals in a word: the student frontend and festival may spell them differently); quotes
    or dashes outside words; blocklisted words.
    """
    text = " ".join(sentence.split())
    if not ALLOWED.fullmatch(text) or ".." in text or "--" in text:
        return None
    words = text.split()
    if len(words) < min_words:
        return None
    for token in words:
        bare = token.rstrip(",.?!;")
        if not WORD.fullmatch(bare):  # stray quote, dash or mid-word punctuation
            return None
        if sum(c.isupper() for c in bare) > 1:
            return None
        lower = bare.lower()
        if lower in BLOCKLIST or lower.removesuffix("'s") in BLOCKLIST or lower.removesuffix("'") in BLOCKLIST:
            return None
    text = text[0].upper() + text[1:]
    if text[-1] in ",;":
        text = text[:-1]
    if text[-1] not in ".?!":
        text += "."
    return text if len(text) <= max_chars else None


def join_sentences(sentences: Sequence[str], rng: random.Random, max_chars: int = MAX_CHARS) -> list[str]:
    """Group consecutive sentences into items of at most max_chars characters.

    Each item draws a target length uniformly from [0, max_chars] and takes sentences until it
    reaches it, so item lengths spread evenly up to max_chars instead of bunching at one
    sentence. A sentence longer than max_chars stays alone (clean_sentence drops those).
    """
    items = []
    i = 0
    while i < len(sentences):
        target = rng.uniform(0, max_chars)
        group = [sentences[i]]
        length = len(sentences[i])
        i += 1
        while i < len(sentences) and length < target and length + 1 + len(sentences[i]) <= max_chars:
            group.append(sentences[i])
            length += 1 + len(sentences[i])
            i += 1
        items.append(" ".join(group))
    return items


def plan_items(sentences: Sequence[str], seed: int, min_words: int = MIN_WORDS, max_chars: int = MAX_CHARS) -> list[str]:
    """Every item this seed can give, in order: clean, shuffle, join. Train takes the head, test the tail."""
    kept = sorted({c for c in (clean_sentence(s, min_words, max_chars) for s in sentences) if c})
    rng = random.Random(seed)
    rng.shuffle(kept)
    return join_sentences(kept, rng, max_chars)


def item_id(index: int) -> str:
    return f"slt{index:05d}"


# ---------------------------------------------------------------------------------------------
# Festival


def scheme_string(text: str) -> str:
    """A string literal for festival's Scheme reader: backslash and quote escaped, whitespace collapsed."""
    text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(jobs: Sequence[tuple[str, Path]], voice: str = VOICE) -> str:
    """A Scheme program rendering each (text, wav path). An error in one sentence (festival aborts
    the whole batch on an uncaught error) is caught, reported and leaves that file missing."""
    lines = [
        f"({'voice_' + voice})",
        "(define (teacher_render text path)",
        "  (unwind-protect",
        "    (utt.save.wave (SynthText text) path 'riff)",
        '    (format t "render failed: %s\\n" path)))',
    ]
    lines += [f"(teacher_render {scheme_string(text)} {scheme_string(str(path))})" for text, path in jobs]
    return "\n".join(lines) + "\n"


def run_festival(jobs: Sequence[tuple[str, Path]], script: Path) -> str:
    """Render jobs in one festival process; returns its stderr (festival exits 0 even when it writes nothing)."""
    script.write_text(festival_script(jobs), encoding="utf-8")
    try:
        proc = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True,
                              timeout=60 + 30 * len(jobs), stdin=subprocess.DEVNULL)
        return proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:  # the files written so far are still checked
        return f"festival timed out after {err.timeout:.0f} s"


# ---------------------------------------------------------------------------------------------
# Audio


def _frame_db(wav: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS level in dB of each frame: (1 + (T - frame) // hop,)."""
    frames = np.lib.stride_tricks.sliding_window_view(wav, frame)[::hop].astype(np.float64)
    return 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20))


def trim_and_normalize(wav: np.ndarray, sample_rate: int, *, top_db: float = TRIM_TOP_DB,
                       margin_s: float = TRIM_MARGIN_S, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """(T,) -> (T',): leading/trailing frames quieter than top_db below the loudest one cut, keeping
    margin_s each side; scaled so the frames above that threshold have RMS target_dbfs (peak
    limited to PEAK_LIMIT, which the voice's crest factor does not reach at -20 dBFS)."""
    frame = max(1, round(0.0116 * sample_rate))  # ~12 ms frames, a quarter-frame hop: edges within 3 ms
    hop = max(1, frame // 4)
    if len(wav) < frame:
        return wav
    db = _frame_db(wav, frame, hop)
    loud = db > db.max() - top_db
    index = np.flatnonzero(loud)
    margin = round(margin_s * sample_rate)
    start = max(0, index[0] * hop - margin)
    end = min(len(wav), index[-1] * hop + frame + margin)
    speech_rms = np.sqrt(np.mean(10 ** (db[loud] / 10)))
    gain = 10 ** (target_dbfs / 20) / speech_rms
    out = wav[start:end] * gain
    peak = np.abs(out).max()
    if peak > PEAK_LIMIT:
        out *= PEAK_LIMIT / peak
    return out.astype(np.float32)


def check_render(path: Path, audio: AudioConfig) -> tuple[Optional[np.ndarray], str]:
    """Read a festival render resampled to audio.sample_rate: (wav (T,), "") or (None, what is wrong)."""
    if not path.is_file():
        return None, "missing"
    try:
        wav = load_wav(path, audio, resample=True)
    except AudioError as err:
        return None, str(err).removeprefix(f"{path}: ")
    if np.abs(wav).max() < SILENT_PEAK:
        return None, "silent"
    if len(wav) < MIN_SECONDS * audio.sample_rate:
        return None, f"only {len(wav) / audio.sample_rate:.2f} s"
    return wav, ""


def finished(path: Path, audio: AudioConfig) -> bool:
    """A wav a previous run wrote (writes are atomic, so an existing file is whole)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # missing or unreadable: render it again
        return False
    return info.samplerate == audio.sample_rate and info.channels == 1 and info.frames > 0


# ---------------------------------------------------------------------------------------------
# Setup


def ensure_installed() -> None:
    """apt-get install the Debian packages unless festival, the voice and WordNet are all there."""
    def present() -> bool:
        return (shutil.which("festival") is not None and VOICE_DIR.is_dir()
                and all((WORDNET_DIR / name).is_file() for name in WORDNET_FILES))

    if present():
        return
    if shutil.which("apt-get") is None:
        raise SetupError(f"festival, the slt HTS voice or WordNet is missing and apt-get is not available: "
                         f"install {' '.join(PACKAGES)}")
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        raise SetupError(f"festival, the slt HTS voice or WordNet is missing; as root run: "
                         f"apt-get install -y {' '.join(PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = sudo + ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    print(f"installing {' '.join(PACKAGES)} with apt-get", file=sys.stderr, flush=True)
    for attempt in range(2):
        if attempt:  # the package lists may be stale or absent
            subprocess.run(sudo + ["apt-get", "update"], env=env, capture_output=True)
        proc = subprocess.run(install, env=env, capture_output=True, text=True)
        if proc.returncode == 0 and present():
            return
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise SetupError(f"apt-get install {' '.join(PACKAGES)} failed: {last}")


def licence_text() -> str:
    parts = [
        "This corpus was rendered by scripts/make_teacher_corpus.py with the Festival speech synthesis\n"
        f"system and its {VOICE} voice (CMU ARCTIC speaker SLT, HTS), reading example sentences\n"
        "from WordNet 3.0. The audio was resampled, trimmed and level-normalised; sentences were\n"
        "filtered and joined. The notices of every package involved follow, as Debian ships them.\n",
    ]
    for package in LICENSED_PACKAGES:
        path = Path("/usr/share/doc") / package / "copyright"
        body = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else f"({path} not found)\n"
        parts.append(f"{'=' * 78}\n{package}: {path}\n{'=' * 78}\n{body}")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass(frozen=True)
class Item:
    id: str
    text: str


def render_chunk(items: Sequence[Item], wavs: Path, work: Path, audio: AudioConfig) -> tuple[list[Item], list[str]]:
    """Render, check, re-render failures once, post-process into wavs/. Returns (dropped, messages)."""
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    script = work / f"{items[0].id}.scm"
    pending = list(items)
    messages = []
    for attempt in range(2):
        output = run_festival([(item.text, raw / f"{item.id}.wav") for item in pending], script)
        failed = []
        for item in pending:
            path = raw / f"{item.id}.wav"
            wav, problem = check_render(path, audio)
            path.unlink(missing_ok=True)
            if wav is None:
                failed.append(item)
                messages.append(f"{item.id}: {problem}{' (dropped)' if attempt else ', rendering again'}")
            else:
                save_wav(wavs / f"{item.id}.wav", trim_and_normalize(wav, audio.sample_rate), audio.sample_rate)
        if attempt == 0 and len(pending) > 1 and len(failed) == len(pending):  # festival itself is broken
            tail = (output.strip().splitlines() or ["no output"])[-1]
            raise SetupError(f"festival rendered none of {len(pending)} sentences: {tail}")
        pending = failed
        if not pending:
            break
    script.unlink(missing_ok=True)
    return pending, messages


def write_corpus(out: Path, train: Sequence[Item], test: Sequence[Item], audio: AudioConfig,
                 dev: Sequence[Item] = ()) -> dict:
    """metadata.csv, test.txt and (with dev items) dev.txt for the items whose wavs exist; returns
    counts and hours."""
    import soundfile as sf

    wavs = out / "wavs"
    train_ok, test_ok, dev_ok = ([item for item in items if finished(wavs / f"{item.id}.wav", audio)]
                                 for items in (train, test, dev))
    atomic_write(out / "metadata.csv", "".join(f"{i.id}|{i.text}|{i.text}\n" for i in train_ok).encode())
    atomic_write(out / "test.txt", "".join(f"{i.id}|{i.text}\n" for i in test_ok).encode())
    if dev:
        atomic_write(out / "dev.txt", "".join(f"{i.id}|{i.text}\n" for i in dev_ok).encode())
    seconds = sum(sf.info(str(wavs / f"{i.id}.wav")).duration for i in train_ok)
    return {"count": len(train_ok), "test_count": len(test_ok), "dev_count": len(dev_ok),
            "hours": round(seconds / 3600, 3),
            "dropped": len(train) + len(test) + len(dev) - len(train_ok) - len(test_ok) - len(dev_ok)}


def make_corpus(out: Path, count: Optional[int], test_count: int, seed: int, *, chunk: int = 100, jobs: int = 1,
                max_chars: int = MAX_CHARS, wordnet_dir: Path = WORDNET_DIR, dev_count: int = 0) -> dict:
    started = time.monotonic()
    audio = AudioConfig()
    texts = plan_items(extract_sentences(wordnet_dir), seed, max_chars=max_chars)
    if count is None:
        count = len(texts) - test_count - dev_count
    if min(count, test_count, dev_count) < 0 or count + test_count + dev_count > len(texts):
        raise SetupError(f"--count {count} + --test-count {test_count} + --dev-count {dev_count} exceeds the "
                         f"{len(texts)} items this seed and --max-chars give")
    items = [Item(item_id(i), text) for i, text in enumerate(texts)]
    # test items are the plan's last, dev items follow the training items: neither moves with --count
    train, test = items[:count], items[len(items) - test_count:]
    dev = items[count:count + dev_count]

    settings = {"format": FORMAT, "voice": VOICE, "seed": seed, "max_chars": max_chars, "min_words": MIN_WORDS,
                "sample_rate": audio.sample_rate, "trim_top_db": TRIM_TOP_DB, "trim_margin_s": TRIM_MARGIN_S,
                "target_dbfs": TARGET_DBFS,
                "plan_sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest()}
    manifest = out / "corpus.json"
    if manifest.is_file():
        previous = json.loads(manifest.read_text())
        changed = sorted(k for k in settings if previous.get(k) != settings[k])
        if changed:
            raise SetupError(f"{out} holds a corpus made with other {', '.join(changed)}: "
                             f"use another --out or delete it")
    wavs = out / "wavs"
    work = out / ".work"
    wavs.mkdir(parents=True, exist_ok=True)
    atomic_write(manifest, (json.dumps(settings, indent=2) + "\n").encode())
    atomic_write(out / "LICENSES.txt", licence_text().encode())

    todo = [item for item in (*train, *test, *dev) if not finished(wavs / f"{item.id}.wav", audio)]
    total = len(train) + len(test) + len(dev)
    print(f"{total - len(todo)} of {total} wavs already made; "
          f"rendering {len(todo)} in chunks of {chunk}", file=sys.stderr, flush=True)
    chunks = [todo[i:i + chunk] for i in range(0, len(todo), chunk)]
    done = 0
    render_started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for batch, (dropped, messages) in zip(chunks, pool.map(lambda c: render_chunk(c, wavs, work, audio), chunks)):
            done += len(batch)
            for message in messages:
                print(message, file=sys.stderr)
            rate = (time.monotonic() - render_started) / done
            print(f"[{done}/{len(todo)}] {rate:.2f} s/item, about {rate * (len(todo) - done) / 60:.0f} min left",
                  file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True)
    summary = write_corpus(out, train, test, audio, dev)
    summary["seconds_taken"] = round(time.monotonic() - started, 1)
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/teacher"), help="corpus directory (default data/teacher)")
    parser.add_argument("--count", type=int, default=None, help="training items (default: all the plan holds)")
    parser.add_argument("--test-count", type=int, default=100, help="held-out items listed in test.txt")
    parser.add_argument("--dev-count", type=int, default=0,
                        help="more held-out items, listed in dev.txt: the ones after the training items")
    parser.add_argument("--seed", type=int, default=1234, help="shuffles and joins the sentences")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS, help="longest item in characters (~17 a second)")
    parser.add_argument("--chunk", type=int, default=100, help="sentences per festival process")
    parser.add_argument("--jobs", type=int, default=1, help="festival processes at once")
    parser.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install missing packages")
    args = parser.parse_args(argv)
    if args.chunk < 1 or args.jobs < 1:
        parser.error("--chunk and --jobs must be at least 1")
    import torch

    torch.set_num_threads(1)  # resampling is light; festival processes want the cores
    try:
        if not args.no_install:
            ensure_installed()
        elif shutil.which("festival") is None:
            raise SetupError(f"festival is not installed: apt-get install -y {' '.join(PACKAGES)}")
        summary = make_corpus(args.out, args.count, args.test_count, args.seed, chunk=args.chunk, jobs=args.jobs,
                              max_chars=args.max_chars, wordnet_dir=args.wordnet_dir,
                              dev_count=args.dev_count)
    except SetupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
