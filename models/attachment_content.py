"""What an attachment really is, read from its bytes (docs/referrals.md, "Attachments").

The filename and the Content-Type a client sends say nothing: a phone, a browser or an attacker chooses
them. Here the first bytes name the format (magic numbers) and a walk of the format's own structure
(JPEG segments, PNG chunks, RIFF chunks, Ogg pages, MP4 boxes, MP3 frames, the PDF trailer) must cover
the file exactly, so nothing rides after the end (a JPEG with HTML appended, a GIFAR-style ZIP behind an
image). Markup that a browser could run is refused anywhere in the file, archives and compressed
streams are refused outright (a zip bomb is never opened), and images are refused above a pixel count
(a "decompression bomb" is small on disk and huge once decoded).

The checks read through ``reader(offset, length) -> bytes`` so the file need never be whole in memory.
"""

import struct

from models.errors import Problem

# content type -> kind
TYPES = {
    "image/jpeg": "image", "image/png": "image", "image/webp": "image",
    "application/pdf": "pdf",
    "audio/ogg": "audio", "audio/mpeg": "audio", "audio/mp4": "audio", "audio/wav": "audio",
}
# What browsers and phones also call these types (a file picker's File.type, a form's part).
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-wav": "audio/wav",
           "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav", "audio/mp3": "audio/mpeg",
           "audio/x-m4a": "audio/mp4", "audio/m4a": "audio/mp4", "audio/opus": "audio/ogg",
           "application/ogg": "audio/ogg"}
MAX_PIXELS = 50_000_000  # a 50-megapixel photo is far beyond a phone's; past it, decoding is the attack
# Case-insensitive markers of something a browser would run or render as a page.
MARKUP = (b"<script", b"<html", b"<!doctype", b"<iframe", b"<svg", b"<body", b"<?php", b"<object", b"<embed")
# PDF features that run code or carry other files; refused (a case file needs none of them).
PDF_ACTIONS = (b"/javascript", b"/js ", b"/js(", b"/js<", b"/launch", b"/embeddedfile", b"/richmedia")
REFUSED_FORMATS = ((b"PK\x03\x04", "a ZIP archive"), (b"PK\x05\x06", "a ZIP archive"), (b"\x1f\x8b", "gzip data"),
                   (b"BZh", "bzip2 data"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
                   (b"\xfd7zXZ", "xz data"), (b"GIF8", "a GIF image"), (b"MZ", "a program"),
                   (b"\x7fELF", "a program"))
M4A_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"mp41", b"isom", b"iso2", b"dash"}


class ContentRefused(Problem):
    def __init__(self, message: str, **details):
        super().__init__("content_refused", message, details)


def sniff(head: bytes) -> str | None:
    """The allowed content type these first bytes (at least 16) begin, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head[4:8] == b"ftyp" and head[8:12] in M4A_BRANDS:
        return "audio/mp4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def describe(head: bytes) -> str:
    for magic, name in REFUSED_FORMATS:
        if head.startswith(magic):
            return name
    if head.lstrip()[:1] == b"<":
        return "markup (HTML or XML)"
    return "an unknown format"


def check(declared: str, size: int, reader) -> str:
    """Refuse (ContentRefused) unless the bytes are a well-formed file of the declared type; return its kind."""
    head = reader(0, 32)
    found = sniff(head)
    if found is None:
        raise ContentRefused(f"The file is {describe(head)}, not one of the accepted types "
                             f"({', '.join(TYPES)}).", declared=declared)
    if found != declared:
        raise ContentRefused(f"The file's content is {found}, not {declared} as declared.",
                             declared=declared, detected=found)
    WALKS[found](size, reader)
    tail_start = max(0, size - 65_557)  # a ZIP's end record sits in its last 64 KiB + 22 bytes
    if b"PK\x05\x06" in reader(tail_start, size - tail_start):
        raise ContentRefused("The file ends with a ZIP archive's directory (a polyglot file).")
    return TYPES[found]


class MarkupScan:
    """Fed the plaintext in order, finds markup even split across two pieces; ``verdict`` refuses it
    (after the format check, whose message is the more precise)."""

    def __init__(self, pdf: bool):
        self.carry, self.pdf, self.found = b"", pdf, None

    def feed(self, piece: bytes) -> None:
        window = (self.carry + piece).lower()
        for marker in MARKUP + (PDF_ACTIONS if self.pdf else ()):
            if self.found is None and marker in window:
                self.found = marker.decode().strip()
        self.carry = window[-16:]

    def verdict(self) -> None:
        if self.found:
            raise ContentRefused(f"The file holds '{self.found}', which a browser or reader could run.")


def _refuse_trailing(what: str):
    raise ContentRefused(f"The file has data after the end of the {what} (a polyglot, or a damaged file).")


def _need(data: bytes, n: int, what: str) -> bytes:
    if len(data) < n:
        raise ContentRefused(f"The {what} is truncated.")
    return data


def _pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ContentRefused("The image has no size.")
    if width * height > MAX_PIXELS:
        raise ContentRefused(f"The image is {width}×{height} pixels, above the limit of {MAX_PIXELS:,}.",
                             max_pixels=MAX_PIXELS)


def walk_jpeg(size, read):
    pos, seen_frame = 2, False
    while True:
        marker = _need(read(pos, 4), 4, "JPEG")
        if marker[0] != 0xFF:
            raise ContentRefused("The JPEG's segments are damaged.")
        code = marker[1]
        if code == 0xD9:
            break
        if code in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        length = struct.unpack(">H", marker[2:4])[0]
        if code in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            sof = _need(read(pos + 4, 5), 5, "JPEG")
            height, width = struct.unpack(">HH", sof[1:5])
            _pixels(width, height)
            seen_frame = True
        if code == 0xDA:  # start of scan: entropy-coded data runs to the end-of-image marker
            if read(size - 2, 2) != b"\xff\xd9":
                _refuse_trailing("JPEG image")
            break
        pos += 2 + length
        if pos >= size:
            raise ContentRefused("The JPEG is truncated.")
    if not seen_frame:
        raise ContentRefused("The JPEG has no image frame.")


def walk_png(size, read):
    pos, first = 8, True
    while pos < size:
        header = _need(read(pos, 8), 8, "PNG")
        length, kind = struct.unpack(">I", header[:4])[0], header[4:]
        if first:
            if kind != b"IHDR":
                raise ContentRefused("The PNG does not start with its header chunk.")
            width, height = struct.unpack(">II", _need(read(pos + 8, 8), 8, "PNG"))
            _pixels(width, height)
            first = False
        pos += 12 + length
        if kind == b"IEND":
            if pos != size:
                _refuse_trailing("PNG image")
            return
    raise ContentRefused("The PNG is truncated (no end chunk).")


def _riff_chunks(size, read, what):
    declared = struct.unpack("<I", read(4, 4))[0] + 8
    if declared != size:
        if declared < size:
            _refuse_trailing(what)
        raise ContentRefused(f"The {what} is truncated.")
    pos, chunks = 12, []
    while pos < size:
        header = _need(read(pos, 8), 8, what)
        length = struct.unpack("<I", header[4:])[0]
        chunks.append((header[:4], pos + 8, length))
        pos += 8 + length + (length & 1)
    if pos != size:
        raise ContentRefused(f"The {what}'s chunks do not fit its size.")
    return chunks


def walk_webp(size, read):
    chunks = _riff_chunks(size, read, "WebP image")
    kind, start, _ = chunks[0] if chunks else (b"", 0, 0)
    if kind == b"VP8X":
        data = _need(read(start + 4, 6), 6, "WebP image")
        _pixels(int.from_bytes(data[:3], "little") + 1, int.from_bytes(data[3:], "little") + 1)
    elif kind == b"VP8L":
        bits = int.from_bytes(_need(read(start + 1, 4), 4, "WebP image"), "little")
        _pixels((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    elif kind == b"VP8 ":
        data = _need(read(start + 6, 4), 4, "WebP image")
        _pixels(struct.unpack("<H", data[:2])[0] & 0x3FFF, struct.unpack("<H", data[2:])[0] & 0x3FFF)
    else:
        raise ContentRefused("The WebP image has no image chunk.")


def walk_wav(size, read):
    kinds = {kind for kind, _, _ in _riff_chunks(size, read, "WAV sound")}
    if not {b"fmt ", b"data"} <= kinds:
        raise ContentRefused("The WAV sound has no format or no data chunk.")


def walk_pdf(size, read):
    if read(0, 8)[5:8] not in (b"1.0", b"1.1", b"1.2", b"1.3", b"1.4", b"1.5", b"1.6", b"1.7", b"2.0"):
        raise ContentRefused("The PDF's header names no known PDF version.")
    tail = read(max(0, size - 1024), min(size, 1024))
    end = tail.rfind(b"%%EOF")
    if end < 0:
        raise ContentRefused("The PDF has no end-of-file marker in its last 1024 bytes (truncated, or "
                             "something appended).")
    if tail[end + 5:].strip():
        _refuse_trailing("PDF")


def walk_ogg(size, read):
    pos, first = 0, True
    while pos < size:
        header = _need(read(pos, 27), 27, "Ogg sound")
        if header[:4] != b"OggS" or header[4] != 0:
            if first:
                raise ContentRefused("The Ogg sound is damaged.")
            _refuse_trailing("Ogg sound")
        segments = read(pos + 27, header[26])
        body = sum(_need(segments, header[26], "Ogg sound"))
        if first:
            codec = read(pos + 27 + header[26], 8)
            if not (codec.startswith(b"OpusHead") or codec.startswith(b"\x01vorbis")):
                raise ContentRefused("The Ogg file holds neither Opus nor Vorbis sound.")
            first = False
        pos += 27 + header[26] + body
    if pos != size:
        raise ContentRefused("The Ogg sound is truncated.")


def walk_mp4(size, read):
    pos, kinds = 0, set()
    while pos < size:
        header = _need(read(pos, 8), 8, "M4A sound")
        length, kind = struct.unpack(">I", header[:4])[0], header[4:]
        if length == 1:
            length = struct.unpack(">Q", _need(read(pos + 8, 8), 8, "M4A sound"))[0]
        elif length == 0:
            length = size - pos
        if length < 8:
            raise ContentRefused("The M4A sound's boxes are damaged.")
        kinds.add(kind)
        pos += length
    if pos != size:
        raise ContentRefused("The M4A sound is truncated.")
    if b"moov" not in kinds:
        raise ContentRefused("The M4A file has no movie box: it holds no sound.")


MP3_BITRATES = {  # kbit/s by (MPEG-1?, layer III) and index; MPEG-2/2.5 layer III for the rest
    True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}
MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def walk_mp3(size, read):
    pos = 0
    head = read(0, 10)
    if head.startswith(b"ID3"):
        tag = _need(head, 10, "MP3 tag")
        pos = 10 + ((tag[6] & 0x7F) << 21 | (tag[7] & 0x7F) << 14 | (tag[8] & 0x7F) << 7 | (tag[9] & 0x7F))
        pos += 10 if tag[5] & 0x10 else 0
    end = size - 128 if size >= 128 and read(size - 128, 3) == b"TAG" else size
    frames = 0
    while pos < end:
        h = read(pos, 4)
        if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
            if frames == 0:
                raise ContentRefused("The MP3 has no sound frame.")
            _refuse_trailing("MP3 sound")
        version, layer = (h[1] >> 3) & 3, (h[1] >> 1) & 3
        bitrate_index, rate_index, padding = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
        if layer != 1 or version == 1 or rate_index == 3 or MP3_BITRATES[version == 3][bitrate_index] == 0:
            raise ContentRefused("The MP3's frames are damaged (only MPEG layer III is accepted).")
        bitrate = MP3_BITRATES[version == 3][bitrate_index] * 1000
        rate = MP3_RATES[version][rate_index]
        pos += (144 if version == 3 else 72) * bitrate // rate + padding
        frames += 1
    if pos > end and frames < 2:
        raise ContentRefused("The MP3 is truncated.")


WALKS = {"image/jpeg": walk_jpeg, "image/png": walk_png, "image/webp": walk_webp, "audio/wav": walk_wav,
         "application/pdf": walk_pdf, "audio/ogg": walk_ogg, "audio/mp4": walk_mp4, "audio/mpeg": walk_mp3}
