"""The Wyoming protocol side of `tts serve`, as wyoming-piper speaks it, so Home Assistant's
Wyoming integration can use this server unchanged: ``describe`` answers with the voices;
``synthesize`` streams ``audio-start``, ``audio-chunk``..., ``audio-stop``. Wyoming has no
authentication, so the settings refuse to bind it beyond loopback without --insecure."""

from __future__ import annotations

import logging

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler
from wyoming.tts import Synthesize

from tts import __version__
from tts.server import audio

log = logging.getLogger(__name__)

CHUNK_SAMPLES = 1024  # samples per audio-chunk event, as wyoming-piper sends them


def info(service) -> Info:
    attribution = Attribution(name="tts", url="https://github.com/")
    voices = [TtsVoice(name=v["name"], description=f"{v['name']} ({v['sample_rate']} Hz)", attribution=attribution,
                       installed=True, version=__version__, languages=[v["language"]])
              for v in service.describe_voices()]
    return Info(tts=[TtsProgram(name="tts", description="Tacotron 2 + WaveNet text to speech", attribution=attribution,
                                installed=True, version=__version__, voices=voices)])


class Handler(AsyncEventHandler):
    """One Wyoming connection."""

    def __init__(self, reader, writer, *, service):
        super().__init__(reader, writer)
        self.service = service

    async def handle_event(self, event: Event) -> bool:
        from tts.server.http import RequestError

        if Describe.is_type(event.type):
            await self.write_event(info(self.service).event())
            return True
        if not Synthesize.is_type(event.type):
            return True
        request = Synthesize.from_event(event)
        name = request.voice.name if request.voice is not None else None
        try:
            job, _ = await self.service.start(text=request.text, voice=name if name else None)
        except RequestError as err:
            await self.write_event(Error(text=str(err), code="bad-request").event())
            return True
        rate = self.service.worker.voices[job.voice].sample_rate
        await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        async for piece in self.service.audio(job, "wyoming"):
            for start in range(0, len(piece), CHUNK_SAMPLES):
                await self.write_event(AudioChunk(rate=rate, width=2, channels=1,
                                                  audio=audio.pcm16(piece[start:start + CHUNK_SAMPLES])).event())
        await self.write_event(AudioStop().event())
        return True
