"""Draws the VitalTrends icon (a recovery ring on a rounded tile) as RGBA PNGs.

Run from the repository root: python3 icons/make_icons.py. Pure Python, no imaging library, so
the icons can be regenerated anywhere.
"""
import math
import struct
import zlib

ACCENT = (38, 99, 235)
RING = (255, 255, 255)
TRACK = (255, 255, 255, 90)


def pixel(x, y, size):
    u = (x + 0.5) / size
    v = (y + 0.5) / size
    # Rounded tile with a soft edge.
    r = 0.22
    dx = max(abs(u - 0.5) - (0.5 - r), 0.0)
    dy = max(abs(v - 0.5) - (0.5 - r), 0.0)
    edge = r - math.hypot(dx, dy)
    alpha = max(0.0, min(1.0, edge * size))
    if alpha <= 0:
        return (0, 0, 0, 0)
    color = ACCENT
    a = 255
    # Ring: 3/4 filled arc from the top, clockwise, plus a faint track.
    d = math.hypot(u - 0.5, v - 0.5)
    width = 0.075
    # One pixel of anti-aliasing at the ring's edges, whatever the icon size.
    ring = max(0.0, min(1.0, (width - abs(d - 0.29)) * size))
    if ring > 0:
        angle = (math.degrees(math.atan2(u - 0.5, 0.5 - v)) + 360) % 360
        if angle <= 270:
            color = tuple(int(c * (1 - ring) + w * ring) for c, w in zip(color, RING))
        else:
            t = ring * TRACK[3] / 255
            color = tuple(int(c * (1 - t) + w * t) for c, w in zip(color, TRACK[:3]))
    return (*color, int(a * alpha))


def png(size, path):
    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y, size)) for x in range(size)) for y in range(size)
    )

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


for size, name in [(32, "32x32.png"), (128, "128x128.png"), (256, "128x128@2x.png"), (512, "icon.png")]:
    png(size, f"icons/{name}")
print("icons written")
