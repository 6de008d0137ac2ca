"""Neural text-to-speech: English text -> phonemes -> Tacotron 2 mels -> WaveNet audio."""

__version__ = "0.1.0"
