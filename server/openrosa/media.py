"""Media parts of a submission, checked by their content, not by the name or type the phone gave.

Homecoming keeps no photos or recordings of children: a part's name, size, type and SHA-256 go in the
submission log and its bytes are dropped. A part that is not what it says it is, or of a kind a form
could not have produced, refuses the whole post.
"""

import hashlib

from server.openrosa.errors import OpenRosaError

# (leading bytes, offset, kind): the kinds ODK Collect attaches for image, audio and video questions.
SIGNATURES = ((b"\xff\xd8\xff", 0, "image/jpeg"), (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
              (b"#!AMR", 0, "audio/amr"), (b"OggS", 0, "audio/ogg"), (b"ID3", 0, "audio/mpeg"),
              (b"ftyp", 4, "video/mp4"), (b"RIFF", 0, "audio/wav"))
# The declared types that agree with each detected kind (mp4 holds audio too: m4a).
AGREES = {"video/mp4": {"video/mp4", "audio/mp4", "audio/m4a", "audio/x-m4a", "video/3gpp", "audio/3gpp"},
          "audio/wav": {"audio/wav", "audio/x-wav", "audio/wave"}}


def kind_of(data: bytes) -> str | None:
    return next((kind for magic, at, kind in SIGNATURES if data[at:at + len(magic)] == magic), None)


def describe_part(part) -> dict:
    data = part.read()
    kind = kind_of(data)
    declared = (part.mimetype or "application/octet-stream").lower()
    name = part.filename or part.name
    if kind is None:
        raise OpenRosaError(415, f"The file '{name}' is not a photo, recording or video this server accepts.")
    if declared != "application/octet-stream" and declared not in AGREES.get(kind, {kind}):
        raise OpenRosaError(415, f"The file '{name}' says it is {declared} but its content is {kind}.")
    return {"name": name, "size": len(data), "type": kind, "sha256": hashlib.sha256(data).hexdigest()}
