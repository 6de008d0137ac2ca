"""One row of a corpus listing (metadata.csv, a held-out test.txt, a `tts batch` id|text file).

The one row parser: it decides once between the raw and the normalized text column and knows the
optional speaker column. It lives apart from tts.data, and imports nothing, so that `tts batch`
and `tts eval` read rows without loading torch and Lightning (tts.data re-exports it).
"""

from __future__ import annotations

from typing import Optional


def parse_row(line: str, *, speakers: bool = False) -> tuple[str, Optional[str], str, str]:
    """One metadata row -> (id, speaker or None, raw text, text to speak), the one place that
    decides between the raw and the normalized column (normalized when present and not empty).
    Rows are ``id|text[|normalized]``, or with ``speakers`` ``id|speaker|text[|normalized]``.
    Raises ValueError with the reason for a malformed row, an id that is no file name included."""
    uid, speaker, raw, text = split_row(line, speakers=speakers)
    if not uid:
        raise ValueError("empty id")
    if "/" in uid or "\\" in uid or uid in (".", ".."):
        raise ValueError(f"id {uid!r} is not a file name (it names wavs/ID.wav)")
    return uid, speaker, raw, text


def split_row(line: str, *, speakers: bool = False) -> tuple[str, Optional[str], str, str]:
    """parse_row without the checks of the id, for readers with their own rule for ids (tts batch:
    an id names OUTDIR/ID.wav, under a stricter rule that its JSONL input shares)."""
    fields = line.rstrip("\n\r").split("|")
    columns = ["id", "speaker", "text"] if speakers else ["id", "text"]
    if len(fields) < len(columns):
        raise ValueError(f"expected '{'|'.join(columns)}|normalized text', got {line.strip()[:60]!r}")
    if len(fields) > len(columns) + 1:
        raise ValueError(f"expected at most {len(columns) + 1} '|'-separated fields, got {len(fields)} "
                         f"(a '|' inside the text?)")
    uid = fields[0].strip()
    speaker = fields[1].strip() if speakers else None
    if speakers and not speaker:
        raise ValueError("empty speaker")
    raw = fields[len(columns) - 1].strip()
    normalized = fields[len(columns)].strip() if len(fields) > len(columns) else ""
    return uid, speaker, raw, normalized or raw
