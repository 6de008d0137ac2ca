import subprocess
import sys

import pytest

from tts.cli import main


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "tts.cli", *args], capture_output=True, text=True, input=stdin,
                          timeout=300)


def test_help_lists_each_subcommand_on_one_line():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("synth", "phonemize", "train", "batch"):
        lines = [line for line in result.stdout.splitlines() if line.strip().startswith(command + " ")]
        assert len(lines) == 1, result.stdout


def test_help_and_phonemize_start_without_lightning_or_models():
    code = ("import sys; from tts.cli import main; main(['phonemize', 'Hello there.']);"
            "heavy = [m for m in ('lightning', 'torch', 'tts.models.tacotron') if m in sys.modules];"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "HH" in result.stdout  # 'hello' was phonemized


def test_phonemize_reads_stdin_line_by_line():
    result = run_cli("phonemize", stdin="Dr. Smith\n\n42 cats\n")
    assert result.returncode == 0, result.stderr
    words = [line for line in result.stdout.splitlines() if line.startswith("words:")]
    assert len(words) == 2 and "doctor smith" in words[0] and "forty" in words[1]


def _one_line_error(capsys, argv, code=1):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "", "-o", "{tmp}/a.wav"], "empty"),
        (["synth", "   ", "-o", "{tmp}/a.wav"], "empty"),
        (["synth", "🙂 🙂", "-o", "{tmp}/a.wav"], "nothing speakable"),
        (["synth", "Hello.", "-o", "{tmp}/missing/a.wav"], "output directory"),
        (["synth", "Hello.", "-o", "{tmp}"], "is a directory"),
        (["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "{tmp}/novoice"], "does not exist"),
        (["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "{tmp}"], "is not a voice"),
        (["synth", "--text-file", "{tmp}/nofile.txt", "-o", "{tmp}/a.wav"], "cannot read --text-file"),
        (["train"], "choose a recipe"),
        (["train", "recipe=nosuch"], "unknown recipe"),
        (["train", "recipe=tiny", "data.root={tmp}", "trainer.maxsteps=3"], "unknown key 'trainer.maxsteps'"),
        (["train", "recipe=tiny", "data.root={tmp}/nowhere"], "not a directory"),
        (["train", "recipe=tiny", "data.root={tmp}"], "metadata.csv not found"),
        (["train", "recipe=tiny", "data.root={tmp}", "data.batch_size=four"], "data.batch_size"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_1(capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    err = _one_line_error(capsys, argv)
    assert message in err
    assert not (tmp_path / "a.wav").exists()


def test_malformed_command_line_exits_2_with_one_line():
    result = run_cli("synth", "hello")  # no -o
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "-o/--output" in result.stderr


def test_unwritable_output(capsys):
    # /proc/1 is a directory nobody, root included, may create files in.
    err = _one_line_error(capsys, ["synth", "Hello.", "-o", "/proc/1/a.wav"])
    assert "cannot write to /proc/1" in err
