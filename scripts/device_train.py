"""Train the default voice on a lent GPU machine that starts bare, within a fixed wall clock.

    python3 scripts/device_train.py --corpus-rows ROWS_DIR --festival BUNDLE.tar.xz --out OUT \
        --deadline-s 540 [key=value ...]

Made for a machine that has torch, Lightning and a GPU but no festival, no corpus and no network:

1. The teacher corpus is rendered there, from the id|text rows of ROWS_DIR/metadata.csv, with a
   festival bundle made here by scripts/pack_festival.sh (the binary, the libraries it links
   and its data); make_teacher_corpus.render_chunk does the rendering and the same trimming and
   levelling, on every core. 4 h of audio would not travel; its 60 kB of text does.
2. The features are cached once, on every core.
3. Both stages (or those named by --stages) train side by side on the one GPU (`tts train ... stage=acoustic` and
   `stage=vocoder`, the real entry point, init_from the shipped voice), each with
   trainer.max_minutes set so that both have exported before the deadline.
4. OUT gets the exported weights as fp16 safetensors (each under the 16 MiB a file that comes
   back), the run's voice.json and recipe.yaml, logs.tar.gz (TensorBoard logs and each stage's
   output) and a summary: six files of the eight that come back. The last line of output is that
   summary as JSON (the steps and last logged values of each stage).

Extra key=value settings go to both stages (a stage's own acoustic_train.* / vocoder_train.* keys
reach only that stage, as in `tts train`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

# The seconds a stage needs around its training: starting Lightning, the final checkpoint, export.
STAGE_OVERHEAD_S = 60


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def install_festival(bundle: Path, into: Path) -> Path:
    """Unpack the bundle and put a `festival` on PATH that finds its libraries and data there."""
    with tarfile.open(bundle) as tar:
        tar.extractall(into, filter="tar")
    wrapper = into / "wrapper" / "festival"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text("#!/bin/sh\n"
                       f'LD_LIBRARY_PATH="{into}/lib" exec "{into}/bin/festival" --libdir "{into}/share/festival" --datadir "{into}/share/festival" "$@"\n')
    wrapper.chmod(0o755)
    os.environ["PATH"] = f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}"
    return wrapper


def render(rows_dir: Path, corpus: Path, jobs: int) -> dict:
    import make_teacher_corpus as mtc
    import torch
    from tts.audio import atomic_write
    from tts.config import AudioConfig
    from tts.rows import parse_row

    audio = AudioConfig()
    rows = [parse_row(line) for line in (rows_dir / "metadata.csv").read_text(encoding="utf-8").splitlines() if line]
    items = [mtc.Item(uid, raw) for uid, _, raw, _ in rows]
    wavs, work = corpus / "wavs", corpus / ".work"
    wavs.mkdir(parents=True, exist_ok=True)
    chunks = [items[i:i + 25] for i in range(0, len(items), 25)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # resampling is light; the festival processes want the cores
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            dropped = [item for lost, _ in pool.map(lambda c: mtc.render_chunk(c, wavs, work, audio), chunks)
                       for item in lost]
    finally:
        torch.set_num_threads(threads)
    lost = {item.id for item in dropped}
    kept = [item for item in items if item.id not in lost]
    atomic_write(corpus / "metadata.csv", "".join(f"{i.id}|{i.text}|{i.text}\n" for i in kept).encode())
    for name in ("corpus.json", "LICENSES.txt"):
        if (rows_dir / name).is_file():
            shutil.copyfile(rows_dir / name, corpus / name)
    return {"items": len(kept), "dropped": len(lost)}


def prepare_features(settings: list[str], workers: int) -> int:
    """The feature cache both stages read, made once on every core."""
    from tts.config import load_recipe
    from tts.data import prepare_corpus
    from tts.train.run import _cache_root, _symbols

    recipe = load_recipe("teacher", settings + [f"data.num_workers={workers}"])
    run_dir = Path(recipe.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    symbols = _symbols(run_dir, recipe.init_from)
    return len(prepare_corpus(recipe.data, recipe.audio, symbols, _cache_root(recipe, run_dir), progress=False))


def prepare_gta(settings: list[str]) -> int:
    """For --gta: the init_from voice's Tacotron becomes the run's acoustic part, and its
    ground-truth-aligned mels are made here (on the GPU), before the vocoder's clock starts; the
    vocoder stage then finds them cached. -> the number of mels."""
    from tts.config import load_recipe
    from tts.train.export import copy_part
    from tts.train.run import _symbols, make_gta_mels

    recipe = load_recipe("teacher", settings)
    run_dir = Path(recipe.run_dir)
    if not recipe.init_from or copy_part(Path(recipe.init_from), "acoustic", run_dir) is None:
        raise SystemExit(f"--gta needs init_from=VOICE with a Tacotron, got init_from={recipe.init_from!r}")
    return len(list(make_gta_mels(recipe, run_dir, _symbols(run_dir, recipe.init_from)).glob("*.npy")))


def last_scalars(stage_dir: Path) -> dict:
    """The last value of each TensorBoard scalar of a stage, and its step."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    found = {}
    for events in sorted((stage_dir / "logs").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            last = acc.Scalars(tag)[-1]
            found[tag] = {"step": last.step, "value": round(last.value, 5)}
    return found


def export(run_dir: Path, out: Path) -> dict:
    from ship_default_voice import half_weights

    shipped = {}
    for part in ("acoustic", "vocoder"):
        source = run_dir / f"{part}.safetensors"
        if source.is_file():
            (out / f"{part}.fp16.safetensors").write_bytes(half_weights(source))
            shipped[part] = True
    for name in ("voice.json", "recipe.yaml"):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)
    # At most 8 files come back from the machine: the stages' output logs travel in the tarball.
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        for stage in ("acoustic", "vocoder"):
            if (run_dir / stage / "logs").is_dir():
                tar.add(run_dir / stage / "logs", arcname=f"{stage}/logs")
            if (out / f"{stage}.log").is_file():
                tar.add(out / f"{stage}.log", arcname=f"{stage}.log")
                (out / f"{stage}.log").unlink()
    return shipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-rows", type=Path, required=True, help="a folder with the corpus's metadata.csv")
    parser.add_argument("--festival", type=Path, required=True, help="the bundle from scripts/pack_festival.sh")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tts-device"), help="corpus, cache and run directory")
    parser.add_argument("--out", type=Path, required=True, help="where the weights and logs go")
    parser.add_argument("--deadline-s", type=float, required=True, help="seconds from start by which OUT is written")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="festival processes and feature workers")
    parser.add_argument("--acoustic", nargs="*", default=[], help="settings for the acoustic stage only")
    parser.add_argument("--vocoder", nargs="*", default=[], help="settings for the vocoder stage only")
    parser.add_argument("--stages", nargs="+", choices=("acoustic", "vocoder"), default=["acoustic", "vocoder"],
                        help="the stages to train (default both, side by side); one alone gets the whole GPU")
    parser.add_argument("--gta", action="store_true",
                        help="the vocoder fine-tunes on the init_from voice's ground-truth-aligned mels (--stages vocoder)")
    parser.add_argument("settings", nargs="*", help="key=value settings for both stages")
    args = parser.parse_args()
    if args.gta and args.stages != ["vocoder"]:
        parser.error("--gta holds the Tacotron fixed: train the vocoder alone (--stages vocoder)")
    args.out.mkdir(parents=True, exist_ok=True)
    corpus, run_dir = args.work / "teacher", args.work / "run"

    install_festival(args.festival, args.work / "festival")
    log("festival installed")
    rendered = render(args.corpus_rows, corpus, args.jobs)
    log(f"rendered {rendered}")
    common = [f"data.root={corpus}", f"run_dir={run_dir}", f"data.cache_dir={args.work / 'cache'}", *args.settings]
    items = prepare_features(common, args.jobs)
    log(f"features of {items} items cached")
    if args.gta:
        log(f"ground-truth-aligned mels of {prepare_gta(common)} items made")
        args.vocoder = [*args.vocoder, "vocoder_train.gta=true"]

    minutes = (args.deadline_s - (time.monotonic() - STARTED) - STAGE_OVERHEAD_S) / 60
    if minutes <= 0.5:
        log("no time left to train")
        return 1
    log(f"training {' and '.join(args.stages)} for {minutes:.2f} min")
    entry = "import sys; from tts.cli import main; sys.exit(main())"
    procs = {}
    for stage, extra in (("acoustic", args.acoustic), ("vocoder", args.vocoder)):
        if stage not in args.stages:
            continue
        argv = [sys.executable, "-c", entry, "train", "recipe=teacher", f"stage={stage}", *common, *extra,
                f"trainer.max_minutes={minutes:.3f}"]
        logfile = open(args.out / f"{stage}.log", "w")
        procs[stage] = (subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT, cwd=ROOT), logfile)
    codes = {}
    for stage, (proc, logfile) in procs.items():
        codes[stage] = proc.wait()
        logfile.close()
        log(f"{stage} exited {codes[stage]}")
    shipped = export(run_dir, args.out)
    summary = {"rendered": rendered, "exit": codes, "exported": shipped, "minutes": round(minutes, 2),
               "seconds": round(time.monotonic() - STARTED, 1)}
    card = json.loads((run_dir / "voice.json").read_text()) if (run_dir / "voice.json").is_file() else {}
    for stage in ("acoustic", "vocoder"):
        summary[stage] = {"steps": card.get(stage, {}).get("steps"), "scalars": last_scalars(run_dir / stage)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
