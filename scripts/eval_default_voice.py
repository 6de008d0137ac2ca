"""Measure a voice on the teacher corpus's held-out sentences: intelligibility, distortion, robustness, speed.

    python3 scripts/eval_default_voice.py --corpus data/teacher --count 50 --update-card

- Intelligibility: word and character error rates of what a recognizer hears (--asr whisper, the
  default: Whisper tiny.en; or pocketsphinx) in five sets of audio:
    teacher                    the teacher's own recordings (how well the recognizer can do at all)
    wavenet, griffinlim        our voice: Tacotron's mels through the WaveNet / Griffin-Lim
    wavenet_copy_synthesis,    the teacher's own mels through the WaveNet / Griffin-Lim: the
    griffinlim_copy_synthesis  vocoder's share of the errors, told apart from the acoustic model's
  Reference and hypothesis are compared through tts.eval.normalize_for_wer (lowercase words, no
  punctuation, numbers spelled out by the project's own normalizer on both sides).
- MCD (dB, tts.eval.mel_cepstral_distortion) of each of the four synthetic sets against the
  teacher's recordings of the same sentences. Everything is scored at 16 kHz, as `tts eval` does.
- Robustness, per sentence, from the inferred alignment: ran to the length bound (the stop token
  never fired), stopped early (attention ended before the last symbols, or the audio is under 0.6x
  the teacher's length), repeated (attention jumped back two or more symbols, or the audio is over
  1.6x the teacher's length).
- Speed: wall time of `tts synth` for a 10-word sentence in a fresh process (cold start: imports,
  loading, the sampling kernel from its cache) and its real-time factor, with WaveNet and with
  Griffin-Lim; and the recognizer's seconds per clip.

A WaveNet's WER depends on its draws: with --draws N both WaveNet sets (ours and copy synthesis) are
sampled N times (seeds 0..N-1, the same mels), their figures are the mean over the draws (each draw's
WER listed), and the WaveNet-minus-Griffin-Lim interval takes each sentence's mean edits.

With --update-card the figures go into the voice's card under "metrics", and the card's
"default_vocoder" (what `tts synth` uses unless told) becomes Griffin-Lim if the recognizer
understood it better than WaveNet, else WaveNet. Progress goes to stderr; last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from tts.asr import DEFAULT_RECOGNIZER, RECOGNIZERS, SAMPLE_RATE, load_recognizer
from tts.audio import MelSpectrogram, load_wav, resample_wav
from tts.card import MAX_TEMPERATURE
from tts.data import CorpusError, read_metadata
from tts.eval import error_rates, mel_cepstral_distortion, wer_difference
from tts.voice import DEFAULT_VOICE, Voice, load_card, read_card, write_card

TEN_WORDS = "Please call Stella and ask her to bring these things."
SETS = ("teacher", "wavenet", "griffinlim", "wavenet_copy_synthesis", "griffinlim_copy_synthesis")


def robustness(result: dict, teacher_seconds: float, hop_seconds: float) -> str:
    """'ok', 'length_bound', 'early' or 'repeat' for one Voice.mels result."""
    if result["stop_reason"] == "length_bound":
        return "length_bound"
    alignment = result["alignment"]  # (T_dec, L)
    peaks = alignment.argmax(dim=1)
    n_symbols = alignment.shape[1]
    seconds = result["mel"].shape[1] * hop_seconds
    if int(peaks[-1]) < n_symbols - 3 or seconds < 0.6 * teacher_seconds:
        return "early"
    if bool((peaks[1:] - peaks[:-1] <= -2).any()) or seconds > 1.6 * teacher_seconds:
        return "repeat"
    return "ok"


def cold_synth(voice_dir: Path | None, text: str, vocoder: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [sys.executable, "-m", "tts.cli", "synth", text, "-o", str(out), "-q", "--seed", "0", "--vocoder", vocoder]
        if voice_dir is not None:
            cmd += ["--voice", str(voice_dir)]
        began = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - began
        seconds = sf.info(str(out)).duration
    return {"text": text, "wall_s": round(wall, 2), "audio_s": round(seconds, 2), "rtf": round(wall / seconds, 3)}


def synthesize(voice: Voice, corpus: Path, rows: list[tuple[str, str]], batch: int,
               sets: tuple[str, ...] = SETS, draws: int = 1) -> tuple[dict, list[str], float]:
    """-> ({set name: [draw: [(T,) float32 at the voice's rate per row]]}, robustness verdicts, wall
    seconds). The WaveNet's sets ("wavenet", our mels, and "wavenet_copy_synthesis", the teacher's)
    have ``draws`` each, sampled with seeds 0, 1, ... from the same mels; the others one. Only the
    sets asked for are made (the teacher's recordings always: MCD is measured against them); without
    "wavenet" or "griffinlim" the Tacotron is not run and there are no verdicts."""
    hop_seconds = voice.audio.hop_length / voice.sample_rate
    to_mel = MelSpectrogram(voice.audio)
    audio: dict[str, list[list[np.ndarray]]] = {
        name: [[] for _ in range(draws if name.startswith("wavenet") else 1)]
        for name in SETS if name in sets or name == "teacher"}
    verdicts = []
    began = time.perf_counter()
    for start in range(0, len(rows), batch):
        group = rows[start:start + batch]
        teacher = [load_wav(corpus / "wavs" / f"{uid}.wav", voice.audio) for uid, _ in group]
        audio["teacher"][0] += teacher
        if "wavenet" in sets or "griffinlim" in sets:
            results = voice.mels([text for _, text in group], seed=0)
            mels = [r["mel"] for r in results]
            for name in ("wavenet", "griffinlim"):
                for seed, made in enumerate(audio.get(name, [])):
                    made += voice.vocode(mels, vocoder=name, seed=seed)
            for result, wav in zip(results, teacher):
                verdicts.append(robustness(result, len(wav) / voice.sample_rate, hop_seconds))
        with torch.no_grad():
            truth = [to_mel(torch.from_numpy(wav)) for wav in teacher]
        for name in ("wavenet", "griffinlim"):
            for seed, made in enumerate(audio.get(f"{name}_copy_synthesis", [])):
                made += voice.vocode(truth, vocoder=name, seed=seed)
        print(f"[{start + len(group)}/{len(rows)}] synthesized", file=sys.stderr, flush=True)
    return audio, verdicts, time.perf_counter() - began


def with_vocoder_of(voice_dir: Path | None, vocoder_dir: Path, out: Path) -> Path:
    """A voice directory made of ``voice_dir``'s acoustic model and ``vocoder_dir``'s vocoder (a
    training run or another voice), to judge a vocoder run with the same Tacotron. -> ``out``."""
    import shutil

    voice_dir = voice_dir or DEFAULT_VOICE
    voice, other = load_card(voice_dir), load_card(vocoder_dir)  # both checked before anything is copied
    if other.vocoder is None:
        raise SystemExit(f"{vocoder_dir} has no exported vocoder (its vocoder stage has not finished)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(voice.weights("acoustic"), out / voice.acoustic.file)
    shutil.copy2(other.weights("vocoder"), out / "vocoder.safetensors")
    # The new card is the voice's raw card (provenance kept) with the other's vocoder part and the
    # temperatures that vocoder is sampled at (they belong to it, not to the Tacotron).
    ours, theirs = read_card(voice_dir), read_card(vocoder_dir)
    ours["vocoder"] = {**theirs["vocoder"], "file": "vocoder.safetensors"}
    for key in ("wavenet_temperature", "wavenet_unvoiced_temperature"):
        ours.pop(key, None)
        if key in theirs:
            ours[key] = theirs[key]
    ours.pop("default_vocoder", None)
    ours.pop("metrics", None)
    write_card(out, ours)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, default=None, help="voice directory (default: the shipped voice)")
    parser.add_argument("--corpus", type=Path, default=Path("data/teacher"), help="has test.txt and wavs/")
    parser.add_argument("--count", type=int, default=50, help="held-out sentences to use (the first N of the listing)")
    parser.add_argument("--skip", type=int, default=0, metavar="K",
                        help="start after the listing's first K sentences (e.g. the dev sentences a setting was "
                             "chosen on, to confirm it on fresh ones)")
    parser.add_argument("--listing", default="test.txt", choices=("test.txt", "dev.txt"),
                        help="the corpus's held-out listing: test.txt (reported figures) or dev.txt (for "
                             "choosing settings: make_teacher_corpus.py --dev-count)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="WaveNet sampling temperature (default: the card's wavenet_temperature)")
    parser.add_argument("--unvoiced-temperature", type=float, default=None,
                        help="WaveNet sampling temperature in unvoiced frames (tts.vocoders.voicing_temperatures; "
                             "default: the card's wavenet_unvoiced_temperature, else --temperature's)")
    parser.add_argument("--batch", type=int, default=8, help="sentences synthesized together")
    parser.add_argument("--asr", choices=RECOGNIZERS, default=DEFAULT_RECOGNIZER, help="the recognizer")
    parser.add_argument("--out", type=Path, default=None, help="keep the generated wavs here (ID-SET.wav)")
    parser.add_argument("--no-speed", action="store_true", help="skip the cold-start synth timings")
    parser.add_argument("--update-card", action="store_true", help="write the figures into the voice's card")
    parser.add_argument("--sets", default=",".join(SETS),
                        help=f"comma-separated sets to make and score (default all: {','.join(SETS)})")
    parser.add_argument("--vocoder-from", type=Path, default=None, metavar="DIR",
                        help="judge the vocoder of this run or voice directory with --voice's Tacotron")
    parser.add_argument("--draws", type=int, default=1, metavar="N",
                        help="sample both WaveNet sets N times (seeds 0..N-1, the same mels) and score the mean "
                             "over draws: one draw's WER moves by several words with the seed, or with the "
                             "weights' rounding")
    args = parser.parse_args()
    if args.draws < 1:
        parser.error(f"--draws must be 1 or more, got {args.draws}")
    sets = tuple(name.strip() for name in args.sets.split(",") if name.strip())
    unknown = sorted(set(sets) - set(SETS))
    if unknown or not sets:
        parser.error(f"--sets takes names from {','.join(SETS)}; got {args.sets!r}")
    if args.update_card and (set(sets) != set(SETS) or args.vocoder_from is not None or args.skip
                             or args.listing != "test.txt" or args.temperature is not None
                             or args.unvoiced_temperature is not None):
        parser.error("--update-card needs every set, test.txt from its first sentence, and the voice's own "
                     "vocoder and temperature")
    for flag, value in (("--temperature", args.temperature), ("--unvoiced-temperature", args.unvoiced_temperature)):
        if value is not None and not 0 < value <= MAX_TEMPERATURE:
            parser.error(f"{flag} must be in (0, {MAX_TEMPERATURE:g}], got {value}")

    test_file = args.corpus / args.listing
    if not test_file.is_file():
        parser.error(f"{test_file} does not exist (make the corpus with scripts/make_teacher_corpus.py)")
    try:  # the corpus's own row reader: every malformed row named at once, as for metadata.csv
        rows = [(row.id, row.text) for row in read_metadata(args.corpus, listing=args.listing)]
    except CorpusError as err:
        parser.error(str(err))
    if args.count < 1 or args.skip < 0:
        parser.error(f"--count must be positive and --skip not negative, got {args.count} and {args.skip}")
    if len(rows) < args.skip + args.count:
        parser.error(f"{test_file} has {len(rows)} sentences, fewer than --skip {args.skip} + --count {args.count}")
    rows = rows[args.skip: args.skip + args.count]
    recognizer = load_recognizer(args.asr)  # first, so a missing recognizer fails before minutes of synthesis
    if args.vocoder_from is not None:
        composed = tempfile.TemporaryDirectory()
        args.voice = with_vocoder_of(args.voice, args.vocoder_from, Path(composed.name) / "voice")
    voice = Voice.load(args.voice, device="cpu")
    if "wavenet" in voice.vocoders:
        wavenet = voice.vocoders["wavenet"]
        if args.temperature is not None:
            wavenet.temperature = args.temperature
        if args.unvoiced_temperature is not None:
            wavenet.unvoiced_temperature = args.unvoiced_temperature
    audio, verdicts, synth_s = synthesize(voice, args.corpus, rows, args.batch, sets, args.draws)

    if args.out is not None:
        from tts.audio import save_wav

        args.out.mkdir(parents=True, exist_ok=True)
        for name in sets:
            for draw, wavs in enumerate(audio.get(name, [])):
                suffix = f"-draw{draw}" if draw else ""
                for (uid, _), wav in zip(rows, wavs):
                    save_wav(args.out / f"{uid}-{name}{suffix}.wav", wav, voice.sample_rate)

    references = [text for _, text in rows]
    at_16k = {name: [[resample_wav(wav, voice.sample_rate, SAMPLE_RATE) for wav in wavs] for wavs in made]
              for name, made in audio.items()}
    teacher_16k = at_16k["teacher"][0]
    figures: dict[str, dict] = {}
    heard: dict[str, list[list[str]]] = {}  # set -> draw -> one transcript per row
    asr_s = asr_cpu_s = 0.0
    clips = 0
    scored = [name for name in SETS if name in audio]
    for name in scored:
        began, began_cpu = time.perf_counter(), time.process_time()
        heard[name] = [[recognizer(wav, SAMPLE_RATE) for wav in wavs] for wavs in at_16k[name]]
        asr_s += time.perf_counter() - began
        asr_cpu_s += time.process_time() - began_cpu
        clips += len(rows) * len(heard[name])
        rates = [error_rates(references, draw) for draw in heard[name]]  # every draw has the same words
        figures[name] = {"wer": round(float(np.mean([r["wer"] for r in rates])), 4),
                         "cer": round(float(np.mean([r["cer"] for r in rates])), 4),
                         "words": rates[0]["words"], "chars": rates[0]["chars"]}
        if len(rates) > 1:
            figures[name]["draws"] = [round(r["wer"], 4) for r in rates]
        if name != "teacher":
            figures[name]["mcd_db"] = round(float(np.mean(
                [mel_cepstral_distortion(wav, ref, SAMPLE_RATE)
                 for wavs in at_16k[name] for wav, ref in zip(wavs, teacher_16k)])), 3)
        mcd = f" MCD {figures[name]['mcd_db']:.2f} dB" if "mcd_db" in figures[name] else ""
        each = f" (draws: {', '.join(f'{wer:.3f}' for wer in figures[name]['draws'])})" if "draws" in figures[name] else ""
        print(f"{name}: WER {figures[name]['wer']:.3f} CER {figures[name]['cer']:.3f}{mcd}{each}", file=sys.stderr,
              flush=True)

    counts = {kind: verdicts.count(kind) for kind in ("ok", "early", "repeat", "length_bound")}
    teacher_wer = max(figures["teacher"]["wer"], 1e-9)
    metrics = {
        "sentences": len(rows),
        "listing": args.listing if not args.skip else f"{args.listing} from sentence {args.skip + 1}",
        "asr": f"{recognizer.name}, corpus-level WER and CER after tts.eval.normalize_for_wer",
        **figures,
    }
    if "wavenet" in voice.vocoders:
        metrics["wavenet_temperature"] = voice.vocoders["wavenet"].temperature
        if voice.vocoders["wavenet"].unvoiced_temperature is not None:
            metrics["wavenet_unvoiced_temperature"] = voice.vocoders["wavenet"].unvoiced_temperature
    if "wavenet" in figures:
        metrics["wavenet_wer_over_teacher"] = round(figures["wavenet"]["wer"] / teacher_wer, 3)
    if "wavenet" in heard and "griffinlim" in heard:  # target 2 of issue 13, with its sampling spread
        gap = wer_difference(references, list(zip(*heard["wavenet"])), heard["griffinlim"][0])
        metrics["wavenet_minus_griffinlim"] = {"wer": round(gap["difference"], 4),
                                               "ci95": [round(x, 4) for x in gap["ci95"]]}
        print(f"ours: WaveNet - Griffin-Lim WER {gap['difference']:+.3f}, 95% interval "
              f"[{gap['ci95'][0]:+.3f}, {gap['ci95'][1]:+.3f}] (paired bootstrap over sentences)",
              file=sys.stderr, flush=True)
    if "wavenet_copy_synthesis" in figures and "griffinlim_copy_synthesis" in figures:
        metrics["wavenet_copy_over_griffinlim_copy"] = round(
            figures["wavenet_copy_synthesis"]["wer"] / max(figures["griffinlim_copy_synthesis"]["wer"], 1e-9), 3)
    if verdicts:
        metrics["robustness"] = counts
    metrics.update({
        "audio_seconds": round(sum(len(w) for w in audio.get("wavenet", audio["teacher"])[0]) / voice.sample_rate, 1),
        "batch_synthesis_wall_s": round(synth_s, 1),
        # wall clock, and CPU time, which tells the recognizer's cost on a machine shared with training
        "asr_seconds_per_clip": round(asr_s / clips, 3),
        "asr_cpu_seconds_per_clip": round(asr_cpu_s / clips, 3),
        "machine": f"CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
    })
    if args.vocoder_from is not None:
        vocoder = load_card(args.vocoder_from).vocoder
        metrics["vocoder_from"] = {"dir": str(args.vocoder_from), "steps": vocoder.steps,
                                   "excitation": vocoder.config.excitation}
    if not args.no_speed:
        metrics["synth_10_words_cold"] = cold_synth(args.voice, TEN_WORDS, "wavenet")
        metrics["synth_10_words_cold_griffinlim"] = cold_synth(args.voice, TEN_WORDS, "griffinlim")
    if args.update_card:
        voice_dir = args.voice or DEFAULT_VOICE
        card = read_card(voice_dir)
        card["metrics"] = metrics
        # `tts synth` (vocoder auto) uses whichever vocoder the recognizer understood better.
        if figures["griffinlim"]["wer"] < figures["wavenet"]["wer"]:
            card["default_vocoder"] = "griffinlim"
        else:
            card.pop("default_vocoder", None)
        write_card(voice_dir, card)
    if args.out is not None:
        (args.out / "heard.json").write_text(json.dumps(
            {uid: {"text": text, **{name: heard[name][0][i] if len(heard[name]) == 1 else [draw[i] for draw in heard[name]]
                               for name in scored}} for i, (uid, text) in enumerate(rows)},
            indent=1) + "\n", encoding="utf-8")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
