"""`tts batch`: input formats, manifest, resuming, failing items, sharding (tiny random voice, CPU)."""

import json

import pytest
import soundfile as sf

from tts.batch import (MANIFEST, BatchItem, BatchSettings, read_items, read_manifest, run_batch, shard)
from tts.cli import main
from tts.voice import Voice

TEXTS = ["Hello there.", "Good morning to you all.", "A quick test.", "We read a book today, and then we slept.",
         "Speech is fun.", "The last one."]


def batch(tiny_voice, *args):
    return main(["batch", *map(str, args), "--voice", str(tiny_voice), "--device", "cpu", "--seed", "1"])


def manifest_lines(outdir):
    return [json.loads(line) for line in (outdir / MANIFEST).read_text().splitlines()]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_read_items_formats(tmp_path):
    plain = read_items(write(tmp_path / "in.txt", "\n".join(TEXTS[:3]) + "\n\n" + "Has | a bar.\n"))
    assert [(i.id, i.text, i.line) for i in plain] == [("1", "Hello there.", 1), ("2", "Good morning to you all.", 2),
                                                       ("3", "A quick test.", 3), ("5", "Has | a bar.", 5)]
    csv = read_items(write(tmp_path / "in.csv", "a|Hello.\nb | Two words. \n"))
    assert [(i.id, i.text) for i in csv] == [("a", "Hello."), ("b", "Two words.")]
    lj = read_items(write(tmp_path / "metadata", "LJ001|Dr. Who.|Doctor Who.\nLJ002|Hi.|Hi.\n"))  # by content
    assert [(i.id, i.text) for i in lj] == [("LJ001", "Dr. Who."), ("LJ002", "Hi.")]
    jsonl = read_items(write(tmp_path / "in.jsonl", '{"id": "x", "text": "Hi."}\n{"text": "No id."}\n[1]\n'))
    assert [(i.id, i.text, i.error) for i in jsonl[:2]] == [("x", "Hi.", None), ("line2", "No id.", None)]
    assert jsonl[2].id == "#line3" and "not a valid JSONL item" in jsonl[2].error


def test_read_items_flags_bad_lines_without_stopping(tmp_path):
    items = read_items(write(tmp_path / "in.csv", "a|One.\n../etc|Two.\na|Three.\nno bar here\nb|Four.\n"))
    assert [i.id for i in items] == ["a", "../etc", "a#line3", "#line4", "b"]
    assert [i.error is None for i in items] == [True, False, False, False, True]
    assert "not a safe file name" in items[1].error and "already used on line 1" in items[2].error


def test_read_items_uses_the_corpus_row_parser(tmp_path):
    """id|text rows go through tts.rows (the corpus parser): the text column as written, and a '|'
    inside the text is a bad line instead of a silently shortened text."""
    items = read_items(write(tmp_path / "in.csv", "a|Dr. Who.|Doctor Who.\nb|One | two | three.\n"))
    assert (items[0].id, items[0].text, items[0].error) == ("a", "Dr. Who.", None)
    assert items[1].id == "#line2" and "line 2:" in items[1].error and "'|' inside the text" in items[1].error


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"), ("", "has no text"), ("\n  \n", "has no text"), (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_unreadable_input_is_one_line_exit_1(tmp_path, capsys, tiny_voice, content, message):
    path = tmp_path / "in.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert batch(tiny_voice, path, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_bad_output_and_devices_are_one_line_exit_1(tmp_path, capsys, tiny_voice, monkeypatch):
    source = write(tmp_path / "in.txt", "Hello.\n")
    (tmp_path / "file").write_text("x")
    assert batch(tiny_voice, source, "-o", tmp_path / "file") == 1
    assert "is a file; give a directory" in capsys.readouterr().err
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    # Without --device cpu (which runs N CPU processes, tests/test_batch_processes.py) N GPUs are needed.
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--voice", str(tiny_voice), "--devices", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--devices 2 needs 2 CUDA devices; 0 visible" in err
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert batch(tiny_voice, source, "-o", tmp_path / "out") == 1
    assert "launcher variables must be integers" in capsys.readouterr().err
    assert not (tmp_path / "out" / MANIFEST).exists()


def test_batch_writes_wavs_and_manifest_and_skips_done_items(tiny_voice, tmp_path, capsys):
    source = write(tmp_path / "in.txt", "\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    assert batch(tiny_voice, source, "-o", out, "--batch-size", "4", "--sentence-silence", "0.2") == 0
    records = {r["id"]: r for r in manifest_lines(out)}
    assert sorted(records) == ["1", "2", "3", "4", "5", "6"]
    for uid, record in records.items():
        info = sf.info(str(out / record["path"]))
        assert record["path"] == f"{uid}.wav" and record["error"] is None and info.samplerate == 8000
        assert record["seconds"] == pytest.approx(info.duration, abs=1e-3) and record["rtf"] > 0
    err = capsys.readouterr().err
    assert "6/6" in err and "<" in err  # the bar shows elapsed<remaining
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("6 written, 0 failed, 0 already done:") and "s of audio per second" in summary
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")}

    assert batch(tiny_voice, source, "-o", out) == 0  # everything is done: nothing is redone
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav")} == stamps
    assert len(manifest_lines(out)) == 6
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("0 written, 0 failed, 6 already done")


def test_batch_writes_the_format_asked_for_and_eval_reads_it(tiny_voice, tmp_path, capsys):
    source = write(tmp_path / "in.csv", "a|Hello there.\nb|Speech is fun.\n")
    out = tmp_path / "out"
    assert batch(tiny_voice, source, "-o", out, "-q") == 0
    assert batch(tiny_voice, source, "-o", out, "--format", "flac") == 0  # the wavs do not count as done
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("2 written, 0 failed, 0 already done")
    latest = {r["id"]: r for r in manifest_lines(out)}
    for uid in ("a", "b"):
        assert latest[uid]["path"] == f"{uid}.flac" and sf.info(str(out / f"{uid}.flac")).format == "FLAC"
        wav = sf.read(out / f"{uid}.wav", dtype="int16")[0].astype(int)
        assert abs(sf.read(out / f"{uid}.flac", dtype="int16")[0].astype(int) - wav).max() <= 1  # same samples
    assert batch(tiny_voice, source, "-o", out, "--format", "flac") == 0  # now they do
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("0 written, 0 failed, 2 already done")
    # tts eval scores ID.flac when there is no ID.wav (MCD against the wavs: the same audio)
    flacs = tmp_path / "flacs"
    flacs.mkdir()
    for uid in ("a", "b"):
        (out / f"{uid}.flac").rename(flacs / f"{uid}.flac")
    assert main(["eval", str(flacs), str(source), "--no-asr", "--reference", str(out), "-q"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("2 files: MCD ") and float(last.split("MCD ")[1].split()[0]) < 0.5, last
    with pytest.raises(SystemExit) as refused:
        main(["batch", str(source), "-o", str(out), "--format", "aiff"])
    assert refused.value.code == 2 and "invalid choice: 'aiff'" in capsys.readouterr().err


def test_batch_options_match_tts_synth(tiny_voice, tmp_path, capsys):
    """`tts batch` and `tts synth` run the same synthesis: the same options give the same samples."""
    text = "First sentence here. And a second, longer one."
    source = write(tmp_path / "in.jsonl", json.dumps({"id": "x", "text": text}) + "\n")
    options = ["--seed", "3", "--batch-size", "1", "--vocoder", "griffinlim", "--speed", "1.5",
               "--sentence-silence", "0.25", "-q"]
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--voice", str(tiny_voice), "--device", "cpu", *options]) == 0
    single = tmp_path / "single.wav"
    assert main(["synth", text, "-o", str(single), "--voice", str(tiny_voice), "--device", "cpu", *options]) == 0
    batched, rate = sf.read(out / "x.wav", dtype="int16")
    assert rate == 8000
    assert (batched == sf.read(single, dtype="int16")[0]).all()
    assert capsys.readouterr().err == ""  # -q


def test_failing_items_are_recorded_and_the_run_goes_on(tiny_voice, tmp_path, capsys, monkeypatch):
    source = write(tmp_path / "in.csv", "ok1|Hello there.\nemoji|🙂\nboom|Explode here.\nok2|The last one.\n")
    real = Voice.mels_from_ids

    def fragile(self, encoded, seed=None):  # a model failure on one item, e.g. out of memory
        if [self.encode("Explode here.")] == [list(ids) for ids in encoded]:
            raise RuntimeError("CUDA out of memory (simulated)")
        if any(list(ids) == self.encode("Explode here.") for ids in encoded):
            raise RuntimeError("a batch with the bad item fails as a whole")
        return real(self, encoded, seed=seed)

    monkeypatch.setattr(Voice, "mels_from_ids", fragile)
    out = tmp_path / "out"
    assert batch(tiny_voice, source, "-o", out, "--batch-size", "4", "-q") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 item(s) failed (emoji, boom)" in err
    records = {r["id"]: r for r in manifest_lines(out)}
    assert records["emoji"]["error"].startswith("nothing speakable") and records["emoji"]["path"] is None
    assert records["boom"]["error"] == "RuntimeError: CUDA out of memory (simulated)"
    assert records["ok1"]["error"] is None and records["ok2"]["error"] is None
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "ok1.wav", "ok2.wav"]

    monkeypatch.setattr(Voice, "mels_from_ids", real)  # fixed: a rerun retries only the failures
    assert batch(tiny_voice, source, "-o", out, "-q") == 1  # the emoji still has nothing to say
    assert [r["id"] for r in manifest_lines(out)[4:]] == ["emoji", "boom"]
    assert read_manifest(out)["boom"]["error"] is None and (out / "boom.wav").is_file()


def test_interrupted_batch_resumes_where_it_stopped(tiny_voice, tmp_path, capsys, monkeypatch):
    source = write(tmp_path / "in.txt", "\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    real = Voice.mels_from_ids
    calls = []

    def interrupted(self, encoded, seed=None):
        calls.append(len(encoded))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) during the third batch
        return real(self, encoded, seed=seed)

    monkeypatch.setattr(Voice, "mels_from_ids", interrupted)
    assert batch(tiny_voice, source, "-o", out, "--batch-size", "2", "-q") == 130
    err = capsys.readouterr().err.strip()
    assert err == f"tts batch: interrupted; 4 of 6 items are finished in {out} and kept; run the same command to go on"
    finished = {p.name: p.read_bytes() for p in out.glob("*.wav")}
    assert len(finished) == 4 and len(manifest_lines(out)) == 4
    assert not list(out.glob(".*"))  # no temporary files left behind
    with open(out / MANIFEST, "a") as f:
        f.write('{"id": "4", "err')  # a record cut short by a kill is ignored

    monkeypatch.setattr(Voice, "mels_from_ids", real)
    calls.clear()
    assert batch(tiny_voice, source, "-o", out, "--batch-size", "2") == 0
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("2 written, 0 failed, 4 already done")
    assert {p.name: p.read_bytes() for p in out.glob("*.wav") if p.name in finished} == finished
    assert sorted(read_manifest(out)) == ["1", "2", "3", "4", "5", "6"]
    (out / "2.wav").unlink()  # a wav that went missing is made again
    assert batch(tiny_voice, source, "-o", out, "-q") == 0
    assert (out / "2.wav").is_file()


def test_shards_split_the_items_whatever_is_done():
    items = [BatchItem(f"{n}", "x" * (n * 7 % 11), n) for n in range(1, 24)]
    shares = [shard(items, rank, 3) for rank in range(3)]
    ids = [item.id for share in shares for item in share]
    assert sorted(ids) == sorted(item.id for item in items) and len(set(ids)) == len(ids)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert shard(list(reversed(items)), 1, 3) == shares[1]  # the order of the file does not matter
    with pytest.raises(ValueError, match="rank 3 of 3"):
        shard(items, 3, 3)


def test_ranks_write_disjoint_shares_that_cover_everything(tiny_voice, tmp_path):
    items = read_items(write(tmp_path / "in.txt", "\n".join(TEXTS) + "\n"))
    voice = Voice.load(tiny_voice, device="cpu")
    settings = BatchSettings(batch_size=2, progress=False, seed=1)
    out = tmp_path / "out"
    out.mkdir()
    counts = [run_batch(voice, items, out, settings, rank=rank, world=2) for rank in (1, 0)]
    assert [c["done"] for c in counts] == [3, 3] and [c["skipped"] for c in counts] == [0, 0]
    assert sorted(read_manifest(out)) == sorted(item.id for item in items)
    assert len(manifest_lines(out)) == 6  # no item was written twice


def test_launcher_variables_pick_this_process_share(tiny_voice, tmp_path, monkeypatch, capsys):
    source = write(tmp_path / "in.txt", "\n".join(TEXTS) + "\n")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    out = tmp_path / "out"
    assert batch(tiny_voice, source, "-o", out, "-q") == 0
    expected = {item.id for item in shard(read_items(source), 1, 3)}
    assert {p.stem for p in out.glob("*.wav")} == expected and len(expected) == 2


@pytest.mark.gpu
def test_devices_spread_the_items_over_gpus(tiny_voice, tmp_path, capsys):
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    source = write(tmp_path / "in.txt", "\n".join(TEXTS) + "\n")
    out = tmp_path / "out"
    assert main(["batch", str(source), "-o", str(out), "--voice", str(tiny_voice), "--devices", "2", "-q"]) == 0
    assert sorted(read_manifest(out)) == ["1", "2", "3", "4", "5", "6"] and len(manifest_lines(out)) == 6
