"""The hostile upload corpus of tests/data/hostile/: decompression bombs, broken and disguised files.

Run ``python tests/data/make_hostile.py`` to (re)write the corpus; the reliability tests check that
the committed files are what this script makes (``CORPUS`` is also their table of expected statuses
on /reconstruct and /encode). Every file is built from fixed bytes or fixed pixels, so the output is
the same on every run; files that go through one of Pillow's encoders (``pillow=True``) are only
compared byte for byte under the Pillow version recorded in INDEX.json.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "hostile"
INDEX = "INDEX.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Hostile:
    """One corpus file: how to build it, what it is sent as, and the status the service must answer."""

    name: str
    media_type: str  # the Content-Type it is uploaded with (a lie for the disguised ones)
    status: int  # on /reconstruct and /encode with the default limits
    why: str
    build: Callable[[], bytes]
    pillow: bool = False  # built with one of Pillow's encoders


# PNG by hand: exact bytes, no encoder involved.


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(width: int, height: int, rows: bytes, depth: int = 8, color: int = 0, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    idat = zlib.compress(rows, 9)
    return PNG_MAGIC + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _gradient_rows(width: int, height: int, depth: int = 8) -> bytes:
    """Filter byte 0, then a horizontal gradient, for each row (grey, ``depth`` bits)."""
    if depth == 16:
        row = b"".join(struct.pack(">H", x * 65535 // max(width - 1, 1)) for x in range(width))
    else:
        row = bytes(x * 255 // max(width - 1, 1) for x in range(width))
    return (b"\0" + row) * height


def png_gradient() -> bytes:
    return _png(28, 28, _gradient_rows(28, 28))


def png_header_bomb() -> bytes:
    """IHDR claims 50000 x 50000 (2.5 Gpx); the data is a few bytes."""
    return _png(50_000, 50_000, b"\0" * 64)


def png_bomb() -> bytes:
    """A complete, valid 4097 x 4097 grey PNG of zeros: 16.8 Mpx (over the default 4096 x 4096) in 16 KB."""
    return _png(4097, 4097, b"\0" * (4097 * 4098))


def png_text_bomb() -> bytes:
    """A zTXt chunk that inflates to 8 MB of text before the pixels (Pillow caps text at 1 MB)."""
    ztxt = b"Comment\0\0" + zlib.compress(b"A" * (8 << 20), 9)
    return _png(28, 28, _gradient_rows(28, 28), extra=_chunk(b"zTXt", ztxt))


def png_truncated() -> bytes:
    data = png_gradient()
    return data[: len(data) // 2]


def png_bad_crc() -> bytes:
    """The IHDR CRC is wrong (Pillow checks the CRCs of the chunks it parses, not of IDAT)."""
    ihdr = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    idat = zlib.compress(_gradient_rows(28, 28), 9)
    return PNG_MAGIC + _chunk(b"IHDR", ihdr, crc=0xDEADBEEF) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png_zero_width() -> bytes:
    return _png(0, 28, b"\0" * 28)


def png_chunk_length_lie() -> bytes:
    """A tEXt chunk before the pixels whose length field says 2 GB (the file holds 12 bytes of it)."""
    good = png_gradient()
    start = good.index(b"IDAT") - 4
    lie = struct.pack(">I", 0x7FFFFFFF) + b"tEXt" + b"Comment\0abc"
    return good[:start] + lie + good[start:]


def png_corrupt_pixels() -> bytes:
    """A well-formed PNG whose compressed pixel stream is garbage (valid CRCs)."""
    ihdr = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)
    garbage = bytes((i * 97 + 13) % 256 for i in range(200))
    return PNG_MAGIC + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", garbage) + _chunk(b"IEND", b"")


def png_one_pixel() -> bytes:
    return _png(1, 1, b"\0\x80")


def png_16bit() -> bytes:
    return _png(28, 28, _gradient_rows(28, 28, depth=16), depth=16)


def png_palette_transparency() -> bytes:
    """Colour type 3 with a tRNS chunk: index 0 fully transparent."""
    plte = bytes(range(0, 256, 64)) * 3  # 4 grey-ish entries
    rows = b"".join(b"\0" + bytes((x // 7) % 4 for x in range(28)) for _ in range(28))
    ihdr = struct.pack(">IIBBBBB", 28, 28, 8, 3, 0, 0, 0)
    return (
        PNG_MAGIC
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"PLTE", plte)
        + _chunk(b"tRNS", b"\0")
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


def random_bytes() -> bytes:
    state, out = 12345, bytearray()
    for _ in range(1024):  # a fixed linear congruential stream
        state = (state * 1103515245 + 12345) % 2**31
        out.append(state >> 23)
    return bytes(out)


# Headers of other formats by hand.


def gif_bomb() -> bytes:
    """A GIF whose logical screen is 65535 x 65535, holding a single 1x1 frame."""
    screen = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x80\0\0" + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\0" + b"\x02\x02\x44\x01\0"
    return screen + frame + b"\x3b"


def jpeg_bomb() -> bytes:
    """SOI, a baseline SOF0 claiming 65500 x 65500 grey, EOI: no tables, no scan."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65500, 65500, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"


def bmp_bomb() -> bytes:
    """A BITMAPINFOHEADER claiming 30000 x 30000 at 24 bits, with 64 bytes of pixels."""
    pixels = b"\0" * 64
    info = struct.pack("<IiiHHIIiiII", 40, 30000, 30000, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def svg_body() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28"/></svg>\n'


def html_body() -> bytes:
    return b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>\n"


def empty() -> bytes:
    return b""


# Through Pillow's encoders (JPEG, GIF, TIFF): fixed pixels, fixed options.


def _pillow(img: object, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)  # type: ignore[attr-defined]
    return buffer.getvalue()


def _picture(mode: str = "L") -> Any:  # a PIL.Image.Image (Pillow imported lazily)
    from PIL import Image

    img = Image.new("L", (28, 28), 0)
    img.paste(255, (4, 4, 24, 10))  # a bar near the top: orientation matters
    return img.convert(mode)


def jpeg_cmyk() -> bytes:
    return _pillow(_picture("CMYK"), "JPEG", quality=90)


def jpeg_exif_rotated() -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _pillow(_picture().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())


def jpeg_exif_broken() -> bytes:
    """A JPEG whose APP1 segment says Exif but holds garbage."""
    data = _pillow(_picture(), "JPEG", quality=90)
    app1 = b"Exif\0\0" + b"MM\0\x2a\xff\xff\xff\xff" + b"\x13" * 16
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def jpeg_truncated() -> bytes:
    data = _pillow(_picture("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def gif_animated() -> bytes:
    from PIL import Image

    frames = [_picture(), Image.new("L", (28, 28), 128), Image.new("L", (28, 28), 255)]
    return _pillow(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def gif_truncated() -> bytes:
    data = gif_animated()
    return data[: len(data) // 3]


def tiff_as_png() -> bytes:
    return _pillow(_picture(), "TIFF")


CORPUS = (
    Hostile("png_header_bomb.png", "image/png", 413, "IHDR claims 2.5 Gpx", png_header_bomb),
    Hostile("png_bomb.png", "image/png", 413, "valid 4097x4097 zeros: 16.8 Mpx in 16 KB", png_bomb),
    Hostile("png_text_bomb.png", "image/png", 400, "zTXt inflating to 8 MB (Pillow stops at 1 MB)", png_text_bomb),
    Hostile("gif_bomb.gif", "image/gif", 413, "logical screen 65535x65535", gif_bomb),
    Hostile("jpeg_bomb.jpg", "image/jpeg", 413, "SOF0 claims 65500x65500", jpeg_bomb),
    Hostile("bmp_bomb.bmp", "image/bmp", 413, "header claims 30000x30000x24", bmp_bomb),
    Hostile("png_truncated.png", "image/png", 400, "cut in half", png_truncated),
    Hostile("png_bad_crc.png", "image/png", 400, "IHDR CRC wrong", png_bad_crc),
    Hostile("png_zero_width.png", "image/png", 400, "IHDR width 0", png_zero_width),
    Hostile("png_chunk_length_lie.png", "image/png", 400, "tEXt length 2 GB", png_chunk_length_lie),
    Hostile("png_corrupt_pixels.png", "image/png", 400, "garbage deflate stream", png_corrupt_pixels),
    Hostile("random_bytes.png", "image/png", 400, "1 KB of noise", random_bytes),
    Hostile("empty.png", "image/png", 400, "zero-size body", empty),
    Hostile("svg_as_png.png", "image/png", 400, "SVG labelled image/png", svg_body),
    Hostile("html_as_png.png", "image/png", 400, "HTML labelled image/png", html_body),
    Hostile("tiff_as_png.png", "image/png", 400, "TIFF: not an accepted format", tiff_as_png, pillow=True),
    Hostile("jpeg_truncated.jpg", "image/jpeg", 400, "cut in half", jpeg_truncated, pillow=True),
    Hostile("gif_truncated.gif", "image/gif", 400, "cut to a third", gif_truncated, pillow=True),
    Hostile("png_one_pixel.png", "image/png", 200, "1x1", png_one_pixel),
    Hostile("png_16bit.png", "image/png", 200, "16-bit grey", png_16bit),
    Hostile("png_palette_transparency.png", "image/png", 200, "palette with tRNS", png_palette_transparency),
    Hostile("gif_animated.gif", "image/gif", 200, "3 frames: the first is used", gif_animated, pillow=True),
    Hostile("jpeg_cmyk.jpg", "image/jpeg", 200, "CMYK JPEG", jpeg_cmyk, pillow=True),
    Hostile("jpeg_exif_rotated.jpg", "image/jpeg", 200, "EXIF orientation 6", jpeg_exif_rotated, pillow=True),
    Hostile("jpeg_exif_broken.jpg", "image/jpeg", 200, "garbage EXIF block: ignored", jpeg_exif_broken, pillow=True),
)


def pillow_version() -> str:
    import PIL

    return PIL.__version__


def build_all() -> dict[str, bytes]:
    """Every corpus file's bytes, by name."""
    return {item.name: item.build() for item in CORPUS}


def index(files: dict[str, bytes]) -> dict[str, object]:
    """INDEX.json: the Pillow version that made the encoder-built files, and each file's size and status."""
    import hashlib

    return {
        "pillow": pillow_version(),
        "files": {
            item.name: {
                "bytes": len(files[item.name]),
                "sha256": hashlib.sha256(files[item.name]).hexdigest(),
                "status": item.status,
                "media_type": item.media_type,
                "why": item.why,
            }
            for item in CORPUS
        },
    }


def main(out: Path = HERE) -> int:
    out.mkdir(parents=True, exist_ok=True)
    files = build_all()
    for name, data in files.items():
        (out / name).write_bytes(data)
    (out / INDEX).write_text(json.dumps(index(files), indent=2, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {len(files)} files ({sum(map(len, files.values()))} bytes) to {out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
