"""The `tts` command: parses arguments and calls the package; no logic of its own.

A user mistake (bad text, missing file, wrong key) ends with one line on stderr and exit status 1
(2 for a malformed command line); only a bug in this program shows a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

EXIT_USER_ERROR = 1
EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the input was wrong', imported only once a command has started."""
    from tts.config import ConfigError

    errors: list[type[BaseException]] = [UserError, ConfigError]
    for module, name in (("tts.text", "TextError"), ("tts.audio", "AudioError"), ("tts.voice", "VoiceError"),
                         ("tts.data", "CorpusError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


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


def cmd_phonemize(args: argparse.Namespace) -> int:
    from tts.text import Frontend

    text = _read_text(args)
    frontend = Frontend()
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    for line in lines:
        words, phonemes = frontend.describe(line)
        print(f"words:    {words}")
        print(f"phonemes: {' '.join(phonemes)}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    text = _read_text(args)
    if not text.strip():
        raise UserError("the text is empty")
    check_output_file(args.output)
    from tts.text import Frontend

    frontend = Frontend()
    frontend.phonemize(text)  # unspeakable text fails here, before a model is loaded
    from tts.audio import save_wav
    from tts.voice import Voice

    voice = Voice.load(args.voice, device=args.device, frontend=frontend)
    wav = voice.synthesize([text], vocoder=args.vocoder, seed=args.seed, progress=not args.quiet)[0]
    save_wav(args.output, wav, voice.sample_rate)
    if args.output != "-":
        print(f"wrote {args.output}: {len(wav) / voice.sample_rate:.2f} s", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tts.config import available_recipes, load_recipe

    settings = list(args.settings)
    recipes = [s for s in settings if s.startswith("recipe=")]
    if not recipes:
        raise UserError(f"choose a recipe: tts train recipe=NAME key=value ... (available: {', '.join(available_recipes())})")
    overrides = [s for s in settings if not s.startswith("recipe=")]
    recipe = load_recipe(recipes[-1].split("=", 1)[1], overrides)
    from tts.train.run import train

    run_dir = train(recipe)
    print(f"trained {recipe.stage} into {run_dir}; synthesize with: tts synth \"Hello.\" --voice {run_dir} -o hello.wav")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    raise UserError("tts batch is not available yet: it needs the batch synthesis work (see the issue tracker)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tts", description="Neural text-to-speech: Tacotron 2 + WaveNet, offline English frontend.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    synth = sub.add_parser("synth", help="speak text into a wav file", description="Speak text into a wav file.")
    synth.add_argument("text", nargs="?", help="text to speak ('-' or nothing: read stdin)")
    synth.add_argument("-o", "--output", required=True, help="output .wav path ('-' for stdout)")
    synth.add_argument("--text-file", help="read the text from this file")
    synth.add_argument("--voice", help="voice or training run directory (default: the shipped voice)")
    synth.add_argument("--vocoder", choices=("auto", "wavenet", "griffinlim"), default="auto")
    synth.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    synth.add_argument("--seed", type=int, default=None, help="seed for reproducible output")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=cmd_synth)

    phon = sub.add_parser("phonemize", help="show the normalized words and phonemes of text",
                          description="Show how text is normalized and pronounced (one result per input line).")
    phon.add_argument("text", nargs="?", help="text ('-' or nothing: read stdin)")
    phon.add_argument("--text-file", help="read the text from this file")
    phon.set_defaults(func=cmd_phonemize)

    train = sub.add_parser("train", help="train a voice: tts train recipe=NAME key=value ...",
                           description="Train a voice. Settings are recipe=NAME plus key=value overrides, e.g. "
                                       "data.root=DIR run_dir=DIR stage=acoustic|vocoder|all trainer.max_steps=N.")
    train.add_argument("settings", nargs="*", metavar="key=value")
    train.set_defaults(func=cmd_train)

    batch = sub.add_parser("batch", help="synthesize many texts: tts batch INPUT -o OUTDIR",
                           description="Synthesize every item of a text, CSV (id|text) or JSONL file.")
    batch.add_argument("input")
    batch.add_argument("-o", "--output", required=True, help="output directory")
    batch.set_defaults(func=cmd_batch)
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
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="tts: %(levelname)s: %(message)s" if args.verbose else "%(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tts: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if isinstance(err, _user_errors()):
            print(f"tts {args.command}: error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
