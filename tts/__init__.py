"""Neural text-to-speech: English text -> phonemes -> Tacotron 2 mels -> WaveNet audio.

>>> import tts
>>> speaker = tts.load("runs/lj")          # see tts.api; importing tts itself loads no torch
>>> speaker.speak("Hello world.").save("hello.wav")
"""

__version__ = "0.1.0"

_API = ("Synthesizer", "Speech", "load")


def __getattr__(name: str):
    # The API pulls in torch; `import tts` (and `tts --help`) stays light until it is used.
    if name in _API:
        from tts import api

        return getattr(api, name)
    raise AttributeError(f"module 'tts' has no attribute {name!r}")


def __dir__() -> list:
    return sorted([*globals(), *_API])
