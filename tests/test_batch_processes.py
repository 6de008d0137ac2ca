"""`tts batch` over several processes on the CPU: the --devices spawn path and the torchrun path
that GPU users take, each item written exactly once."""

import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
TEXTS = [f"Item number {n} is here." for n in range(6)]


def _source(tmp_path):
    source = tmp_path / "lines.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    return source


def _check_written_once(out: Path):
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    counts = collections.Counter(r["id"] for r in records)
    assert len(counts) == len(TEXTS) and set(counts.values()) == {1}, counts
    assert all(r["error"] is None for r in records)
    for record in records:
        data, _ = sf.read(out / Path(record["path"]).name)
        assert len(data) > 0
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def test_devices_on_the_cpu_writes_every_item_once(tiny_voice, tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "tts.cli", "batch", str(_source(tmp_path)), "-o", str(out),
                           "--voice", str(tiny_voice), "--devices", "2", "--device", "cpu", "--batch-size", "2", "-q"],
                          capture_output=True, text=True, timeout=600, env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    _check_written_once(out)


def test_torchrun_on_the_cpu_writes_every_item_once(tiny_voice, tmp_path):
    torchrun = shutil.which("torchrun")
    command = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    out = tmp_path / "out"
    done = subprocess.run([*command, "--standalone", "--nproc-per-node", "2", str(ROOT / "scripts" / "batch_synth.py"),
                           str(_source(tmp_path)), "-o", str(out), "--voice", str(tiny_voice), "--device", "cpu",
                           "--batch-size", "2", "-q"], capture_output=True, text=True, timeout=600, env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    _check_written_once(out)
