"""The Wyoming protocol side of `tts serve`, as wyoming-piper speaks it, so Home Assistant's
Wyoming integration can use this server unchanged: ``describe`` answers with the voices;
``synthesize`` streams ``audio-start``, ``audio-chunk``..., ``audio-stop``.

Streamed text (Wyoming 1.7, what Home Assistant sends while a language model is still writing its
answer): ``synthesize-start`` opens a stream, each ``synthesize-chunk`` adds text, and every
sentence that is complete (a later one has begun) is spoken at once as its own ``audio-start``
... ``audio-stop``; ``synthesize-stop`` speaks the rest and answers ``synthesize-stopped``. A plain
``synthesize`` inside a stream repeats its text for servers that cannot stream and is ignored. A
streamed sentence with nothing speakable in it ("🙂.") is skipped rather than ending the answer.

Wyoming has no authentication, so the settings refuse to bind it beyond loopback without
--insecure."""

from __future__ import annotations

import logging
from typing import Optional

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

from tts import __version__
from tts.server import audio
from tts.text.sentences import split_sentences

log = logging.getLogger(__name__)

CHUNK_SAMPLES = 1024  # samples per audio-chunk event, as wyoming-piper sends them


def info(service) -> Info:
    attribution = Attribution(name="tts", url="https://github.com/")
    voices = [TtsVoice(name=v["name"], description=f"{v['name']} ({v['sample_rate']} Hz)", attribution=attribution,
                       installed=True, version=__version__, languages=[v["language"]])
              for v in service.describe_voices()]
    return Info(tts=[TtsProgram(name="tts", description="Tacotron 2 + WaveNet text to speech", attribution=attribution,
                                installed=True, version=__version__, voices=voices,
                                supports_synthesize_streaming=True)])


class TextStream:
    """The text of one synthesize-start ... synthesize-stop, handed out a sentence at a time: a
    sentence is complete once the next one has begun (split_sentences sees both), or at the end.

    >>> stream = TextStream(voice=None, max_chars=2000)
    >>> stream.add("Hello there. How"), stream.add(" are you?"), stream.finish()
    (['Hello there.'], [], 'How are you?')
    """

    def __init__(self, *, voice: Optional[str], max_chars: int):
        self.voice, self.max_chars, self.pending = voice, max_chars, ""

    def add(self, text: str) -> list[str]:
        self.pending += text
        sentences = split_sentences(self.pending)
        if len(sentences) > 1:
            # the last may go on in the next chunk: it is kept (split_sentences joined its whitespace)
            self.pending = sentences[-1] + (" " if self.pending[-1:].isspace() else "")
            return sentences[:-1]
        if len(self.pending) > self.max_chars:  # no end in sight: speak what there is
            return [self.finish()]
        return []

    def finish(self) -> str:
        rest, self.pending = self.pending.strip(), ""
        return rest


class Handler(AsyncEventHandler):
    """One Wyoming connection."""

    def __init__(self, reader, writer, *, service):
        super().__init__(reader, writer)
        self.service = service
        self.stream: Optional[TextStream] = None  # an open synthesize-start ... synthesize-stop

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(info(self.service).event())
        elif SynthesizeStart.is_type(event.type):
            voice = SynthesizeStart.from_event(event).voice
            self.stream = TextStream(voice=voice.name if voice is not None and voice.name else None,
                                     max_chars=self.service.settings.max_text)
        elif SynthesizeChunk.is_type(event.type):
            if self.stream is None:
                await self.write_event(Error(text="synthesize-chunk outside synthesize-start ... synthesize-stop",
                                             code="bad-request").event())
                return True
            for sentence in self.stream.add(SynthesizeChunk.from_event(event).text):
                await self.speak(sentence, self.stream.voice, streamed=True)
        elif SynthesizeStop.is_type(event.type):
            if self.stream is not None:
                rest, voice, self.stream = self.stream.finish(), self.stream.voice, None
                if rest:
                    await self.speak(rest, voice, streamed=True)
            await self.write_event(SynthesizeStopped().event())
        elif Synthesize.is_type(event.type) and self.stream is None:
            request = Synthesize.from_event(event)
            await self.speak(request.text, request.voice.name if request.voice is not None else None)
        return True

    async def speak(self, text: str, voice: Optional[str], *, streamed: bool = False) -> None:
        """``text`` as audio-start, audio-chunk ..., audio-stop, or an error event."""
        from tts.server.http import RequestError

        try:
            job, _ = await self.service.start(text=text, voice=voice if voice else None)
        except RequestError as err:
            if streamed and err.status == 400 and err.param == "input":
                log.info("wyoming: skipped a streamed sentence: %s", err)
                return
            await self.write_event(Error(text=str(err), code="bad-request").event())
            return
        rate = self.service.worker.voices[job.voice].sample_rate
        await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        async for piece in self.service.audio(job, "wyoming"):
            for start in range(0, len(piece), CHUNK_SAMPLES):
                await self.write_event(AudioChunk(rate=rate, width=2, channels=1,
                                                  audio=audio.pcm16(piece[start:start + CHUNK_SAMPLES])).event())
        await self.write_event(AudioStop().event())
