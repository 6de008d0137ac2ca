"""scripts/pack_festival.sh and scripts/device_train.py's rendering: the packed festival, unpacked
elsewhere and run through its wrapper, renders what the installed one renders (skipped without
festival: .ci/run installs it where it can)."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))  # device_train imports make_teacher_corpus as a sibling module
_spec = importlib.util.spec_from_file_location("device_train", SCRIPTS / "device_train.py")
device_train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(device_train)

needs_festival = pytest.mark.skipif(
    shutil.which("festival") is None or not Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts").is_dir(),
    reason="needs festival and festvox-us-slt-hts (apt-get install festival festvox-us-slt-hts)")


@needs_festival
def test_the_packed_festival_renders_what_the_installed_one_does(tmp_path, monkeypatch):
    bundle = tmp_path / "festival.tar.xz"
    subprocess.run(["bash", str(SCRIPTS / "pack_festival.sh"), str(bundle)], check=True, capture_output=True)
    rows = tmp_path / "rows"
    rows.mkdir()
    (rows / "metadata.csv").write_text("slt00001|The cat sat on the mat.|The cat sat on the mat.\n"
                                       "slt00002|Turn on the kitchen lights.|Turn on the kitchen lights.\n")
    import make_teacher_corpus as mtc
    from tts.config import AudioConfig

    reference = tmp_path / "reference"
    reference.mkdir()
    lost, _ = mtc.render_chunk([mtc.Item("slt00001", "The cat sat on the mat."),
                                mtc.Item("slt00002", "Turn on the kitchen lights.")], reference, tmp_path / "w", AudioConfig())
    assert lost == []

    monkeypatch.setenv("PATH", os.environ["PATH"])  # install_festival puts its wrapper first; restored after
    wrapper = device_train.install_festival(bundle, tmp_path / "unpacked")
    assert shutil.which("festival") == str(wrapper)
    assert device_train.render(rows, tmp_path / "corpus", jobs=2) == {"items": 2, "dropped": 0}
    for uid in ("slt00001", "slt00002"):
        ours, rate = sf.read(tmp_path / "corpus" / "wavs" / f"{uid}.wav", dtype="int16")
        theirs, _ = sf.read(reference / f"{uid}.wav", dtype="int16")
        assert rate == 22050 and len(ours) > rate // 2
        np.testing.assert_array_equal(ours, theirs)
    assert (tmp_path / "corpus" / "metadata.csv").read_text().splitlines()[1] == \
        "slt00002|Turn on the kitchen lights.|Turn on the kitchen lights."


@needs_festival
def test_a_broken_bundle_stops_with_festivals_message(tmp_path, monkeypatch):
    """A bundle whose voice is missing renders nothing: one SetupError naming festival's complaint."""
    import make_teacher_corpus as mtc

    bundle = tmp_path / "empty.tar.xz"
    (tmp_path / "stage" / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("festival"), tmp_path / "stage" / "bin" / "festival")
    subprocess.run(["tar", "-C", str(tmp_path / "stage"), "-cJf", str(bundle), "."], check=True)
    rows = tmp_path / "rows"
    rows.mkdir()
    (rows / "metadata.csv").write_text("slt00001|One two three four five six.|x\nslt00002|Seven eight nine ten.|x\n")
    monkeypatch.setenv("PATH", os.environ["PATH"])
    device_train.install_festival(bundle, tmp_path / "unpacked")
    with pytest.raises(mtc.SetupError, match="festival rendered none of 2 sentences"):
        device_train.render(rows, tmp_path / "corpus", jobs=1)
