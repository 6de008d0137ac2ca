import dataclasses

import pytest

from tts.config import AudioConfig, ConfigError, Recipe, WaveNetConfig, available_recipes, from_dict, load_recipe


def test_recipes_load_with_typed_overrides():
    recipe = load_recipe("tiny", ["data.root=/corpus", "trainer.max_steps=7", "data.batch_size=3",
                                  "trainer.accelerator=cpu", "trainer.devices=2", "stage=acoustic", "run_dir=/tmp/r"])
    assert isinstance(recipe, Recipe)
    assert recipe.trainer.max_steps == 7 and isinstance(recipe.trainer.max_steps, int)
    assert recipe.data.batch_size == 3
    # interpolation: each stage inherits the shared settings unless the recipe sets its own
    assert recipe.acoustic_train.max_steps == 7 and recipe.vocoder_train.batch_size == 3
    assert recipe.stage == "acoustic" and recipe.run_dir == "/tmp/r" and recipe.trainer.devices == 2
    assert recipe.vocoder.upsample_scales == (4, 4, 4, 4)
    assert load_recipe("tiny", ["data.root=/c"]).run_dir == "runs/tiny"


def test_every_shipped_recipe_loads():
    assert {"ljspeech", "tiny"} <= set(available_recipes())
    for name in available_recipes():
        assert load_recipe(name, ["data.root=/x"]).audio.sample_rate == 22050


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.root=/x", "data.batch_sise=4"], "unknown key 'data.batch_sise'"),
        (["data.root=/x", "trainer.max_steps=ten"], "trainer.max_steps"),
        (["data.root=/x", "stage=everything"], "stage must be one of"),
        ([], "data.root is required"),
        (["data.root=/x", "vocoder.output=wav"], "vocoder.output must be"),
        (["data.root=/x", "audio.f_max=20000"], "f_max"),
        (["data.root"], "expected key=value"),
    ],
)
def test_bad_overrides_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe("tiny", overrides)


def test_unknown_recipe_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown recipe 'ljspeach'.*ljspeech"):
        load_recipe("ljspeach", [])


def test_audio_config_is_frozen_and_round_trips():
    audio = AudioConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        audio.n_mels = 40
    assert from_dict(AudioConfig, dataclasses.asdict(audio)) == audio
    assert from_dict(WaveNetConfig, {"upsample_scales": [8, 32]}).upsample_scales == (8, 32)
    with pytest.raises(ConfigError, match="no field"):
        from_dict(AudioConfig, {"n_melz": 80})
