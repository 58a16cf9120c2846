"""Small well-formed files of every accepted type, and hostile ones, built in code (nothing shipped)."""

import gzip
import hashlib
import io
import random
import struct
import wave
import zipfile
import zlib


def png(width=1, height=1, filler: bytes = b"") -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00\x00" * min(height, 4))
    extra = chunk(b"prVt", filler) if filler else b""
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def big_png(size=200_000, seed=13) -> bytes:
    """A PNG spanning several sealed chunks, with bytes found nowhere else."""
    return png(filler=random.Random(seed).randbytes(size))


def jpeg(width=2, height=2) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" \
        + sof + sos + b"\x12\x34\x56" + b"\xff\xd9"


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    return out.getvalue()


def ogg() -> bytes:
    def page(payload, sequence, flags):
        segments = bytes([255] * (len(payload) // 255) + [len(payload) % 255])
        return b"OggS\x00" + bytes([flags]) + struct.pack("<QIII", 0, 1, sequence, 0) + bytes([len(segments)]) \
            + segments + payload

    head = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    return page(head, 0, 2) + page(b"OpusTags" + b"\x00" * 8, 1, 0) + page(b"\x00" * 300, 2, 4)


def m4a() -> bytes:
    def box(kind, data):
        return struct.pack(">I", 8 + len(data)) + kind + data

    return box(b"ftyp", b"M4A \x00\x00\x00\x00M4A mp42isom") + box(b"moov", box(b"mvhd", b"\x00" * 100)) \
        + box(b"mdat", b"\x00" * 400)


def mp3(frames=5) -> bytes:
    header = b"\xff\xfb\x90\x64"  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding: 417 bytes a frame
    return b"ID3\x04\x00\x00\x00\x00\x00\x00" + (header + b"\x00" * 413) * frames


def webp() -> bytes:
    bits = (1 - 1) | ((1 - 1) << 14)
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 3
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


VALID = {"image/png": png, "image/jpeg": jpeg, "application/pdf": pdf, "audio/wav": wav, "audio/ogg": ogg,
         "audio/mp4": m4a, "audio/mpeg": mp3, "image/webp": webp}


def zip_bomb() -> bytes:
    """50 MB of zeros in a ZIP of some 50 kB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("photo.jpg", b"\x00" * 50_000_000)
    return out.getvalue()


def gzip_bomb(size=50_000_000) -> bytes:
    return gzip.compress(b"\x00" * size, compresslevel=9)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
