"""Measure a voice on the teacher corpus's held-out sentences: intelligibility, robustness, speed.

    python3 scripts/eval_default_voice.py --corpus data/teacher --count 50 --update-card

- Intelligibility: pocketsphinx word and character error rates of (a) the teacher's own audio,
  (b) our voice with WaveNet, (c) our voice with Griffin-Lim on the same mels, and, to tell the
  vocoder's share from the acoustic model's, (d) our WaveNet on the teacher's own mels (copy
  synthesis).
- Robustness, per sentence, from the inferred alignment: ran to the length bound (the stop token
  never fired), stopped early (attention ended before the last symbols, or the audio is under 0.6x
  the teacher's length), repeated (attention jumped back two or more symbols, or the audio is over
  1.6x the teacher's length).
- Speed: wall time of `tts synth` for a 10-word sentence in a fresh process (cold start: imports,
  loading, the sampling kernel from its cache) and its real-time factor, with WaveNet and with
  Griffin-Lim.

With --update-card the figures go into the voice's card under "metrics", and the card's
"default_vocoder" (what `tts synth` uses unless told) becomes Griffin-Lim if the ASR understood it
better than WaveNet, else WaveNet. Last line: JSON.
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

import soundfile as sf
import torch

from tts.audio import MelSpectrogram, load_wav
from tts.eval import error_rates, transcribe
from tts.voice import DEFAULT_VOICE, Voice, read_card, write_card

TEN_WORDS = "Please call Stella and ask her to bring these things."


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", type=Path, default=None, help="voice directory (default: the shipped voice)")
    parser.add_argument("--corpus", type=Path, default=Path("data/teacher"), help="has test.txt and wavs/")
    parser.add_argument("--count", type=int, default=50, help="held-out sentences to use")
    parser.add_argument("--batch", type=int, default=8, help="sentences synthesized together")
    parser.add_argument("--out", type=Path, default=None, help="keep the generated wavs here")
    parser.add_argument("--update-card", action="store_true", help="write the figures into the voice's card")
    args = parser.parse_args()

    rows = [line.split("|", 1) for line in (args.corpus / "test.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()][: args.count]
    voice = Voice.load(args.voice, device="cpu")
    hop_seconds = voice.audio.hop_length / voice.sample_rate
    teacher, wavenet, griffin, copied, verdicts = [], [], [], [], []
    to_mel = MelSpectrogram(voice.audio)
    began = time.perf_counter()
    for start in range(0, len(rows), args.batch):
        group = rows[start:start + args.batch]
        results = voice.mels([text for _, text in group], seed=0)
        mels = [r["mel"] for r in results]
        wavenet += voice.vocode(mels, vocoder="wavenet", seed=0)
        griffin += voice.vocode(mels, vocoder="griffinlim")
        for (uid, _), result in zip(group, results):
            wav = load_wav(args.corpus / "wavs" / f"{uid}.wav", voice.audio)
            teacher.append(wav)
            verdicts.append(robustness(result, len(wav) / voice.sample_rate, hop_seconds))
        with torch.no_grad():
            truth = [to_mel(torch.from_numpy(wav)) for wav in teacher[start:]]
        copied += voice.vocode(truth, vocoder="wavenet", seed=0)
        print(f"[{start + len(group)}/{len(rows)}] synthesized", file=sys.stderr, flush=True)
    synth_s = time.perf_counter() - began

    if args.out is not None:
        from tts.audio import save_wav

        args.out.mkdir(parents=True, exist_ok=True)
        for (uid, _), a, b in zip(rows, wavenet, griffin):
            save_wav(args.out / f"{uid}-wavenet.wav", a, voice.sample_rate)
            save_wav(args.out / f"{uid}-griffinlim.wav", b, voice.sample_rate)

    references = [text for _, text in rows]
    rates = {}
    for name, wavs in (("teacher", teacher), ("wavenet", wavenet), ("griffinlim", griffin),
                       ("wavenet_copy_synthesis", copied)):
        hypotheses = [transcribe(wav, voice.sample_rate) for wav in wavs]
        rates[name] = {key: round(value, 4) if isinstance(value, float) else value
                       for key, value in error_rates(references, hypotheses).items()}
        print(f"{name}: WER {rates[name]['wer']:.3f} CER {rates[name]['cer']:.3f}", file=sys.stderr, flush=True)

    counts = {kind: verdicts.count(kind) for kind in ("ok", "early", "repeat", "length_bound")}
    speed = cold_synth(args.voice, TEN_WORDS, "wavenet")
    speed_griffin = cold_synth(args.voice, TEN_WORDS, "griffinlim")
    metrics = {
        "sentences": len(rows),
        "asr": "pocketsphinx 5 (its bundled US English model), corpus-level WER and CER",
        "teacher": rates["teacher"], "wavenet": rates["wavenet"], "griffinlim": rates["griffinlim"],
        "wavenet_copy_synthesis": rates["wavenet_copy_synthesis"],
        "wavenet_wer_over_teacher": round(rates["wavenet"]["wer"] / max(rates["teacher"]["wer"], 1e-9), 3),
        "robustness": counts,
        "synth_10_words_cold": speed,
        "synth_10_words_cold_griffinlim": speed_griffin,
        "audio_seconds": round(sum(len(w) for w in wavenet) / voice.sample_rate, 1),
        "batch_synthesis_wall_s": round(synth_s, 1),
        "machine": f"CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
    }
    if args.update_card:
        voice_dir = args.voice or DEFAULT_VOICE
        card = read_card(voice_dir)
        card["metrics"] = metrics
        # `tts synth` (vocoder auto) uses whichever vocoder the ASR understood better.
        if rates["griffinlim"]["wer"] < rates["wavenet"]["wer"]:
            card["default_vocoder"] = "griffinlim"
        else:
            card.pop("default_vocoder", None)
        write_card(voice_dir, card)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
