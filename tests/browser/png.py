"""Just enough PNG decoding to tell a blank screenshot from a drawn one.

Chromium's screenshots are 8-bit RGB or RGBA, not interlaced; that is all
this reads (standard library only: no imaging package for one check).
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type → samples per pixel


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixels(self, step: int = 1):
        """Every ``step``-th pixel of every ``step``-th row, as tuples."""
        c = self.channels
        for row in self.rows[::step]:
            for x in range(0, self.width, step):
                yield tuple(row[x * c:(x + 1) * c])


def decode(data: bytes) -> Image:
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat = len(SIGNATURE), bytearray()
    width = height = depth = colour = interlace = None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if depth != 8 or colour not in CHANNELS or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour {colour}, interlace {interlace})")
    channels = CHANNELS[colour]
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            corner = prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + pred) & 0xFF
        else:
            raise ValueError(f"bad PNG filter {kind}")


@dataclass(frozen=True)
class Coverage:
    colours: int
    dominant_share: float


def coverage(path: Path, step: int = 4) -> Coverage:
    """How many colours a screenshot has and how much of it the commonest one covers."""
    image = decode(path.read_bytes())
    counts = Counter(image.pixels(step))
    total = sum(counts.values())
    return Coverage(len(counts), counts.most_common(1)[0][1] / total if total else 1.0)


def assert_not_blank(path: Path) -> None:
    seen = coverage(path)
    assert seen.colours >= 16 and seen.dominant_share < 0.97, (
        f"{path.name} looks blank: {seen.colours} colours, "
        f"the commonest covers {seen.dominant_share:.0%}"
    )
