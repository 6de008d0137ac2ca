"""The one base class of every user mistake.

Each module raises its own subclass (ConfigError, VoiceError, TextError, ...), so a caller can
catch the kind it cares about; the CLI turns any TTSError into one line and a non-zero exit, and a
server into a 4xx JSON message, without knowing the subclasses. This module imports nothing heavy.
"""

from __future__ import annotations


class TTSError(ValueError):
    """A mistake the user can fix; the message is one line that says what to change.

    It derives from ValueError so that code written against the older per-module errors (all
    ValueErrors) keeps working.
    """
