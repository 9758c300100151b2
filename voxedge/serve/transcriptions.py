"""OpenAI-compatible `POST /v1/audio/transcriptions` and `GET /v1/models`.

The request is multipart/form-data as OpenAI defines it: `file`, `model`, `language`, `prompt`,
`response_format` (json, text, srt, vtt, verbose_json), `timestamp_granularities[]` (word, segment;
verbose_json only). The body is read as it arrives and refused (413) as soon as it passes the upload
limit, or before reading anything when its declared length already does.
"""

from __future__ import annotations

import asyncio
import io

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ..audio import SAMPLE_RATE, resample, to_mono, validate
from ..errors import AudioError, VoxedgeError
from ..transcript import Transcript
from ..writers import render as as_text
from .replies import SERVER, error_response

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
FIELDS = ("model", "language", "prompt", "response_format", "timestamp_granularities[]", "temperature")
MAX_FIELD_BYTES = 1 << 16
CHUNK_BYTES = 1 << 16
# OpenAI reports the language by name; these are the languages voxedge's families transcribe
LANGUAGE_NAMES = {"en": "english", "es": "spanish", "fr": "french", "de": "german", "it": "italian",
                  "pt": "portuguese", "nl": "dutch", "ru": "russian", "ar": "arabic", "hi": "hindi",
                  "ko": "korean", "ja": "japanese", "zh": "chinese"}


class UploadTooLarge(VoxedgeError):
    pass


async def models(request: web.Request) -> web.Response:
    engine = request.app[SERVER].engine
    return web.json_response({"object": "list", "data": engine.models()})


async def transcriptions(request: web.Request) -> web.StreamResponse:
    server = request.app[SERVER]
    limit = int(server.config.max_upload_mb * 2**20)
    try:
        if request.content_length is not None and request.content_length > limit:
            raise UploadTooLarge(f"the request body is {request.content_length} bytes; the limit is {limit}")
        if request.content_type != "multipart/form-data":
            raise VoxedgeError(f"send multipart/form-data (got {request.content_type or 'no content type'})")
        fields, audio = await _read_form(request, limit)
        options = _options(fields, audio)
        async with server.files:
            samples = await asyncio.to_thread(decode_upload, audio)
            segments = await _transcribe(server, samples, options)
    except UploadTooLarge as exc:
        response = error_response(413, str(exc), "upload_too_large")
        response.force_close()  # the rest of the body is never read
        return response
    except VoxedgeError as exc:
        return error_response(400, str(exc), getattr(exc, "code", "invalid_request"))
    transcript = Transcript(tuple(segments), duration=len(samples) / SAMPLE_RATE)
    return render(transcript, options, server.engine)


async def _read_form(request: web.Request, limit: int) -> tuple[dict, bytes]:
    """The form's fields and the file's bytes, counting every byte against `limit` as it arrives."""
    fields: dict[str, list[str]] = {}
    audio, total = None, 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise VoxedgeError("nested multipart bodies are not accepted")
            keep = part.name == "file" or part.name in FIELDS  # others are skipped, as OpenAI does
            data = bytearray()
            while chunk := await part.read_chunk(CHUNK_BYTES):
                total += len(chunk)
                if total > limit:
                    raise UploadTooLarge(f"the request body passed the upload limit of {limit} bytes")
                if keep:
                    data += chunk
            if part.name == "file":
                audio = bytes(data)
            elif part.name in FIELDS:
                if len(data) > MAX_FIELD_BYTES:
                    raise VoxedgeError(f"the form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
                fields.setdefault(part.name, []).append(data.decode("utf-8", "replace"))
    except (HttpProcessingError, ValueError, AssertionError, RuntimeError) as exc:  # aiohttp's, for a malformed body
        raise VoxedgeError(f"the multipart body is malformed ({exc})") from None
    if audio is None:
        raise VoxedgeError("the form has no 'file' field: send the audio as multipart field 'file'")
    return fields, audio


def _options(fields: dict, audio: bytes) -> dict:
    def one(name, default=None):
        return fields.get(name, [default])[-1] or default

    fmt = one("response_format", "json")
    if fmt not in FORMATS:
        raise VoxedgeError(f"response_format {fmt!r} is not one of {', '.join(FORMATS)}")
    granularities = set(fields.get("timestamp_granularities[]", []))
    if granularities - set(GRANULARITIES):
        raise VoxedgeError(f"timestamp_granularities[] takes {' and '.join(GRANULARITIES)}, got {sorted(granularities)}")
    if granularities and fmt != "verbose_json":
        raise VoxedgeError("timestamp_granularities[] needs response_format verbose_json")
    if not audio:
        raise AudioError("the uploaded file is empty")
    return {"format": fmt, "granularities": granularities or {"segment"}, "language": one("language"),
            "prompt": one("prompt")}


def decode_upload(data: bytes):
    """An uploaded sound file (anything libsndfile reads) -> mono float32 at 16 kHz."""
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"cannot decode the uploaded file ({exc}): send wav, flac, ogg or mp3") from None
    return resample(to_mono(validate(samples), channels_first=False), rate)


async def _transcribe(server, samples, options: dict) -> list:
    """Segment by segment on the shared workers, so live clients get their turn between windows."""
    segments = server.engine.transcribe(samples, language=options["language"], prompt=options["prompt"])
    done = object()
    out = []
    while (segment := await server.scheduler.run(next, segments, done)) is not done:
        out.append(segment)
    return out


def render(transcript: Transcript, options: dict, engine) -> web.Response:
    fmt = options["format"]
    if fmt == "text":
        return web.Response(text=transcript.text + "\n")
    if fmt == "srt":
        return web.Response(text=as_text(transcript, "srt"), content_type="application/x-subrip")
    if fmt == "vtt":
        return web.Response(text=as_text(transcript, "vtt"), content_type="text/vtt")
    usage = {"type": "duration", "seconds": round(transcript.duration, 3)}
    if fmt == "json":
        return web.json_response({"text": transcript.text, "usage": usage})
    language = options["language"] or (engine.languages[0] if len(engine.languages) == 1 else None)
    body = {"task": "transcribe", "language": LANGUAGE_NAMES.get(language, language or "unknown"),
            "duration": round(transcript.duration, 3), "text": transcript.text, "usage": usage}
    if "segment" in options["granularities"]:
        body["segments"] = [
            {"id": i, "seek": int(s.start * 100), "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
             "temperature": 0.0}
            for i, s in enumerate(transcript.segments)
        ]
    if "word" in options["granularities"]:
        body["words"] = [{"word": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
                         for s in transcript.segments for w in s.words]
    return web.json_response(body)
