"""The `tts` command: parses arguments and calls the package; no logic of its own.

A user mistake (bad text, missing file, wrong key) ends with one line on stderr and exit status 1
(2 for a malformed command line); only a bug in this program shows a traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from tts.errors import TTSError
from tts.formats import ENCODINGS, format_for_path

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 1
EXIT_USAGE = 2


class UserError(TTSError):
    """A mistake on the command line (a missing file, an unwritable output); printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _read_text(args: argparse.Namespace) -> str:
    if args.text_file:
        try:
            return Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read --text-file {args.text_file}: {err.strerror if isinstance(err, OSError) else err}")
    if args.text in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise UserError("no text given: pass TEXT, --text-file FILE, or pipe text on stdin")
        return sys.stdin.read()
    return args.text


def check_output_file(path: str) -> None:
    """Fail before any work if ``path`` cannot be written."""
    if path == "-":
        return
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UserError(f"output {path} is a directory; give a file name such as {target / 'out.wav'}")
    if not parent.is_dir():
        raise UserError(f"output directory {parent} does not exist")
    try:  # a real probe: permissions, read-only mounts and root all answer the same way
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise UserError(f"cannot write to {parent}: {err.strerror}") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise UserError(f"cannot write {path}: permission denied")


def check_run_dir(path: str) -> None:
    """Fail before any work if ``path`` cannot be (or become) a run directory; creates nothing."""
    target = Path(path)
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == target else f"is under {existing}, which is a file"
        raise UserError(f"run_dir={path} {where}; give a directory")
    try:  # a real probe, as for --output
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise UserError(f"cannot create run_dir={path}: {existing}: {err.strerror}") from None


def cmd_phonemize(args: argparse.Namespace) -> int:
    import json

    from tts.text import Frontend

    text = _read_text(args)
    frontend = Frontend(normalizer=args.normalizer)
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    for line in lines:
        if args.json:  # one object per line: input, words, phonemes, and per token its rule class
            print(json.dumps(frontend.explain(line), ensure_ascii=False))
            continue
        words, phonemes = frontend.describe(line)
        print(f"words:    {words}")
        print(f"phonemes: {' '.join(phonemes)}")
    return 0


def _check_png(option: str, path: Optional[str]) -> None:
    if path is None:
        return
    if Path(path).suffix.lower() != ".png":
        raise UserError(f"{option} {path}: the plot is a PNG image; give a file name ending in .png")
    if path == "-":
        raise UserError(f"{option} cannot write to stdout; give a file name ending in .png")
    check_output_file(path)


def cmd_synth(args: argparse.Namespace) -> int:
    text = _read_text(args)
    if not text.strip():
        raise UserError("the text is empty")
    check_output_file(args.output)
    fmt = format_for_path(args.output, sample_rate=None, explicit=args.format)  # again at the voice's rate
    _check_png("--save-mel", args.save_mel)
    _check_png("--save-alignment", args.save_alignment)
    if args.output == "-" and sys.stdout.isatty():
        raise UserError(f"-o - writes binary {fmt} audio to stdout, which is a terminal; redirect it "
                        f"(> out.{fmt}) or pipe it")
    from tts.text import Frontend

    frontend = Frontend(normalizer=args.normalizer)
    frontend.check(text)  # text with nothing speakable (or a missing extra) fails here, before a model loads
    from tts.synth import SynthesisSettings, save_alignment_plot, save_mel_plot, synthesize_to_file
    from tts.voice import Voice

    settings = SynthesisSettings(vocoder=args.vocoder, seed=args.seed, speed=args.speed,
                                 sentence_silence=args.sentence_silence, batch_size=args.batch_size)
    voice = Voice.load(args.voice, device=args.device, vocoder=args.vocoder != "griffinlim", frontend=frontend)
    voice.vocoder_named(args.vocoder)  # a vocoder the voice lacks fails here, before any work
    began = time.perf_counter()
    # The audio is written as the sentences finish, so memory does not grow with the text.
    speech = synthesize_to_file(voice, text, args.output, settings, fmt=args.format,
                                details=bool(args.save_mel or args.save_alignment), progress=not args.quiet)
    elapsed = time.perf_counter() - began
    if args.save_mel:
        save_mel_plot(speech, args.save_mel, audio=voice.audio)
    if args.save_alignment:
        save_alignment_plot(speech, args.save_alignment)
    unfinished = speech.stop_reasons.count("length_bound")
    if unfinished:
        log.warning("%d of %d sentence(s) ran to the length bound without the model deciding to stop "
                    "(an undertrained voice or an attention failure; see --save-alignment)",
                    unfinished, len(speech.sentences))
    if not args.quiet:
        where = "stdout" if args.output == "-" else args.output
        print(f"wrote {where}: {speech.seconds:.2f} s of audio ({len(speech.sentences)} sentence(s)) in "
              f"{elapsed:.2f} s, real-time factor {elapsed / max(speech.seconds, 1e-9):.3f}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tts.server import ServerSettings, serve

    settings = ServerSettings.from_args(args)
    if settings.normalizer == "nemo":  # before the server starts, not as a voice that failed to load
        from tts.text.nemo import require

        require()
    serve(settings)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tts.config import available_recipes, load_recipe

    settings = list(args.settings)
    recipes = [s for s in settings if s.startswith("recipe=")]
    if not recipes:
        raise UserError(f"choose a recipe: tts train recipe=NAME key=value ... (available: {', '.join(available_recipes())})")
    overrides = [s for s in settings if not s.startswith("recipe=")]
    recipe = load_recipe(recipes[-1].split("=", 1)[1], overrides)
    check_run_dir(recipe.run_dir)
    from tts.train.run import train

    rank_zero = _configure_training_logs()
    run_dir = train(recipe)
    if rank_zero:
        print(f"trained {recipe.stage} into {run_dir}; synthesize with: tts synth \"Hello.\" --voice {run_dir} -o hello.wav")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tts.train.export import export_checkpoints

    exported = export_checkpoints(Path(args.run_dir), Path(args.output), checkpoint=args.checkpoint)
    for part, done in exported.items():
        source = "the run's export" if done.source == "export" else done.source
        print(f"{part}: step {done.steps:,} from {source}")
    if "acoustic" not in exported:
        print(f"{args.output} has no acoustic model yet: it is not a voice on its own")
    else:
        print(f"wrote {args.output}; synthesize with: tts synth \"Hello.\" --voice {args.output} -o hello.wav")
    return 0


# Lightning log lines that tell a user nothing about their run.
_LIGHTNING_NOISE = ("💡 Tip:", "litlogger", "litmodels", "`weights_only` was not set")


class _DropLightningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in _LIGHTNING_NOISE)


def _configure_training_logs() -> bool:
    """Training's logging, once Lightning is imported: Lightning's own handlers go (each of its INFO
    lines was printed twice, by its handler and by ours), its adverts and notices are dropped, and
    a process that is not the first of a DDP run logs warnings only. Returns whether this process
    is the first (rank 0), which alone prints summaries."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _DropLightningNoise) for f in handler.filters):
            handler.addFilter(_DropLightningNoise())
    import warnings

    # Resuming writes into the same checkpoint directory on purpose.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # Lightning's own pytree code builds torch's LeafSpec, which torch deprecates: a notice for
    # Lightning's authors, printed at the start of every stage.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
    # Set by torchrun and by Lightning's own DDP launcher in the processes it starts.
    rank_zero = all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))
    if not rank_zero:
        logging.getLogger().setLevel(logging.WARNING)
    return rank_zero


def cmd_batch(args: argparse.Namespace) -> int:
    from tts import batch

    items = batch.read_items(args.input)
    outdir = batch.prepare_outdir(args.output)
    settings = batch.BatchSettings(voice=args.voice, vocoder=args.vocoder, device=args.device, seed=args.seed,
                                   batch_size=args.batch_size, sentence_silence=args.sentence_silence,
                                   speed=args.speed, progress=not args.quiet, normalizer=args.normalizer,
                                   format=args.format)
    rank, world, local_rank = batch.launcher_rank()
    if world > 1 and args.devices > 1:
        raise UserError(f"--devices {args.devices} starts its own processes; under a launcher (WORLD_SIZE={world}) "
                        f"leave it out")
    mine = batch.shard(items, rank, world)
    before = batch.pending(mine, outdir, settings.format)
    began = time.perf_counter()
    try:
        if args.devices > 1:
            batch.run_devices(items, outdir, settings, args.devices)
        else:
            batch.run_process(items, outdir, settings, rank=rank, world=world,
                              device=batch.process_device(settings, local_rank))
    except KeyboardInterrupt:
        done = batch.summarize(items, outdir, settings.format)["done"]
        print(f"tts batch: interrupted; {done} of {len(items)} items are finished in {outdir} and kept; "
              f"run the same command to go on", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - began
    summary = batch.summarize(before, outdir, settings.format)
    share = f"rank {rank} of {world}: " if world > 1 else ""
    if not args.quiet:
        print(f"{share}{summary['done']} written, {summary['failed']} failed, {len(mine) - len(before)} already done: "
              f"{summary['seconds']:.1f} s of audio in {elapsed:.1f} s ({summary['seconds'] / elapsed:.2f} s of audio "
              f"per second); manifest: {outdir / batch.MANIFEST}", file=sys.stderr)
    if summary["failed"]:
        shown = ", ".join(summary["failed_ids"][:3]) + (", ..." if summary["failed"] > 3 else "")
        raise UserError(f"{share}{summary['failed']} item(s) failed ({shown}); their errors are in "
                        f"{outdir / batch.MANIFEST}; run the same command to retry them")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from tts.eval import evaluate

    if args.json == "-":
        raise UserError("--json needs a file name (the table already goes to stdout)")
    if args.json:
        check_output_file(args.json)
    scores, summary = evaluate(Path(args.dir), Path(args.transcript), reference_dir=args.reference,
                               asr=None if args.no_asr else args.asr, skip_missing=args.skip_missing,
                               progress=not args.quiet)

    def show(value: Optional[float], scale: float = 100.0, unit: str = "%") -> str:
        return "-" if value is None else f"{value * scale:.1f}{unit}"

    print("id\twer\tcer\tmcd_db\theard")
    for s in scores:
        print(f"{s.id}\t{show(s.wer)}\t{show(s.cer)}\t{show(s.mcd, 1.0, '')}\t{s.hypothesis or ''}")
    parts = []
    if "wer" in summary:
        parts.append(f"WER {summary['wer']:.1%} of {summary['words']} words, CER {summary['cer']:.1%} of "
                     f"{summary['chars']} characters ({summary['asr']})")
    if "mcd" in summary:
        parts.append(f"MCD {summary['mcd']:.2f} dB")
    missing = f", {len(summary['missing'])} skipped without a wav" if summary["missing"] else ""
    print(f"{summary['files']} files{missing}: {'; '.join(parts)}")
    if args.json:
        from tts.audio import atomic_write

        record = {"summary": summary, "items": [vars(s) for s in scores]}
        atomic_write(Path(args.json), (json.dumps(record, indent=1) + "\n").encode())
    return 0


def _ranged(kind: type, low: float, high: Optional[float] = None):
    """An argparse type: ``kind`` within [low, high]; nan and infinities are refused here, at parse
    time, before any model loads."""
    def parse(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a{'n integer' if kind is int else ' number'}, got {value!r}")
        if isinstance(number, float) and not math.isfinite(number):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {value}")
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return number
    return parse


def _shipped_default_vocoder() -> str:
    """What auto means for the shipped voice, read from its card (tts.card is light: help stays fast)."""
    from tts.card import DEFAULT_VOICE, VoiceError, load_card

    try:
        return load_card(DEFAULT_VOICE).default_vocoder
    except VoiceError:
        return "nothing: it is not installed"


def _synthesis_options(parser: argparse.ArgumentParser) -> None:
    """The options `tts synth` and `tts batch` share."""
    from tts.synth import MAX_SEED, MAX_SILENCE, SPEED_RANGE, VOCODERS

    parser.add_argument("--voice", help="voice or training run directory (default: the shipped voice)")
    parser.add_argument("--vocoder", choices=VOCODERS, default="auto",
                        help=f"auto (default): the vocoder the voice's card names as its default (the shipped "
                             f"voice names {_shipped_default_vocoder()}); wavenet when the card names none and the "
                             f"voice has one; else griffinlim")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--seed", type=_ranged(int, 0, MAX_SEED), default=None,
                        help=f"seed for reproducible output (0 to {MAX_SEED})")
    parser.add_argument("--speed", type=_ranged(float, *SPEED_RANGE), default=1.0,
                        help="speaking rate: 1.2 faster, 0.8 slower (0.25 to 4; default 1)")
    parser.add_argument("--sentence-silence", type=_ranged(float, 0.0, MAX_SILENCE), default=0.3, metavar="SECONDS",
                        help="silence between sentences (default 0.3)")
    parser.add_argument("--batch-size", type=_ranged(int, 1), default=8,
                        help="sentences synthesized together (default 8)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary line")


def _normalizer_option(parser: argparse.ArgumentParser) -> None:
    from tts.text import Frontend

    parser.add_argument("--normalizer", choices=Frontend.NORMALIZERS, default="builtin",
                        help="how written forms are read: builtin (default) or nemo (NVIDIA NeMo's grammars; "
                             "pip install \"tts[nemo]\"; docs/frontend.md compares them)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tts", description="Neural text-to-speech: Tacotron 2 + WaveNet, offline English frontend.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    synth = sub.add_parser("synth", help="speak text into an audio file",
                           description="Speak text of any length into an audio file (wav, flac, ogg, mp3, ...). Long text is cut into sentences "
                                       "(over-long ones at clause boundaries), synthesized in batches and joined "
                                       "with --sentence-silence.")
    synth.add_argument("text", nargs="?", help="text to speak ('-' or nothing: read stdin)")
    synth.add_argument("-o", "--output", required=True,
                       help="output file; its extension names the format: .wav, .flac, .ogg, .mp3, .pcm (raw "
                            "16-bit little-endian), .opus where the voice's rate allows ('-': stdout, wav)")
    synth.add_argument("--format", choices=list(ENCODINGS),
                       help="write this format whatever the output's extension (e.g. with -o -)")
    synth.add_argument("--text-file", help="read the text from this file")
    _synthesis_options(synth)
    synth.add_argument("--save-mel", metavar="PNG", help="also save a plot of the mel spectrogram")
    synth.add_argument("--save-alignment", metavar="PNG", help="also save a plot of the attention alignments")
    _normalizer_option(synth)
    synth.set_defaults(func=cmd_synth)

    phon = sub.add_parser("phonemize", help="show the normalized words and phonemes of text",
                          description="Show how text is normalized and pronounced (one result per input line).")
    phon.add_argument("text", nargs="?", help="text ('-' or nothing: read stdin)")
    phon.add_argument("--text-file", help="read the text from this file")
    phon.add_argument("--json", action="store_true",
                      help="print one JSON object per line: input, words, phonemes, and each token's rule class")
    _normalizer_option(phon)
    phon.set_defaults(func=cmd_phonemize)

    train = sub.add_parser("train", help="train a voice: tts train recipe=NAME key=value ...",
                           description="Train a voice. Settings are recipe=NAME plus key=value overrides, e.g. "
                                       "data.root=DIR run_dir=DIR stage=acoustic|vocoder|all trainer.max_steps=N.")
    train.add_argument("settings", nargs="*", metavar="key=value")
    train.set_defaults(func=cmd_train)

    export = sub.add_parser("export", help="make a voice from a run's checkpoints: tts export RUN_DIR -o OUT",
                            description="Write a new voice directory from a training run's newest checkpoints (or "
                                        "its best by validation loss), while it trains or after it was stopped: "
                                        "the weights the stage would export at its end (their average where the run "
                                        "keeps one). A stage without checkpoints is copied from the run's export.")
    export.add_argument("run_dir", help="a tts train run directory")
    export.add_argument("-o", "--output", required=True, help="the new voice directory (must not exist)")
    export.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="each stage's newest intact checkpoint (default) or its best validation loss")
    export.set_defaults(func=cmd_export)

    batch = sub.add_parser("batch", help="synthesize many texts: tts batch INPUT -o OUTDIR",
                           description="Synthesize every item of a text (one utterance per line), CSV (id|text) or "
                                       "JSONL file into OUTDIR/ID.wav, with OUTDIR/manifest.jsonl. Running it again "
                                       "skips finished items and retries failed ones.")
    batch.add_argument("input", help="a .txt, .csv (id|text) or .jsonl file")
    batch.add_argument("-o", "--output", required=True, help="output directory")
    batch.add_argument("--format", choices=list(ENCODINGS), default="wav",
                       help="write OUTDIR/ID.FORMAT: wav (default), flac, ogg, mp3, pcm, or opus where the voice's "
                            "rate allows")
    _synthesis_options(batch)
    _normalizer_option(batch)
    batch.add_argument("--devices", type=_ranged(int, 1), default=1,
                       help="spread the items over this many GPUs (one process each); under torchrun leave it out")
    batch.set_defaults(func=cmd_batch)

    serve = sub.add_parser("serve", help="a speech server: web page, OpenAI-style HTTP API, Wyoming",
                           description="Serve voices over HTTP (a web page at /, POST /v1/audio/speech, GET /api/tts, "
                                       "/health, /metrics) and optionally the Wyoming protocol for Home Assistant. "
                                       "Needs the server extra: pip install \"tts[server]\".")
    from tts.server.settings import add_arguments

    add_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    ev = sub.add_parser("eval", help="score synthesized wavs: ASR error rates and mel-cepstral distortion",
                        description="Score DIR/ID.wav for each id|text line of TRANSCRIPT: word and character error "
                                    "rates of an offline recognizer (Whisper tiny.en or pocketsphinx; pip install "
                                    "\"tts[eval]\"), and mel-cepstral distortion against REFERENCE/ID.wav when given.")
    ev.add_argument("dir", help="directory of ID.wav files (e.g. a tts batch OUTDIR)")
    ev.add_argument("transcript", help="id|text lines (a tts batch input, or an LJSpeech metadata.csv)")
    ev.add_argument("--reference", metavar="DIR", help="directory of reference recordings ID.wav for MCD")
    from tts.asr import DEFAULT_RECOGNIZER, RECOGNIZERS

    ev.add_argument("--asr", choices=RECOGNIZERS, default=DEFAULT_RECOGNIZER,
                    help=f"the recognizer (default {DEFAULT_RECOGNIZER}; pocketsphinx is much weaker)")
    ev.add_argument("--no-asr", action="store_true", help="only mel-cepstral distortion (needs --reference)")
    ev.add_argument("--skip-missing", action="store_true", help="score the ids that have wavs, skip the rest")
    ev.add_argument("--json", metavar="FILE", help="also write every score to this JSON file")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_eval)
    return parser


def _version() -> str:
    from tts import __version__

    return __version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("synth", "batch", "eval", "serve"):
        # OpenMP threads that spin while they wait (the default) starve the threads doing the work when
        # torch and the Numba WaveNet kernel share a process, or other jobs share the cores: synthesis
        # measured 10-20x slower on two busy cores (docs/synthesis.md). It must be set before torch
        # loads, which these commands do later; a value the user set wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="tts: %(levelname)s: %(message)s" if args.verbose else "%(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tts: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if isinstance(err, TTSError):
            print(f"tts {args.command}: error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
