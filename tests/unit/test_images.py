"""Event images (services/images.py): only real pictures get in, and only a clean copy is kept.

Warnings are errors in this suite, so a decompression-bomb warning that escaped the
service would fail these tests as surely as an exception would.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image

from config import PROJECT_DIR
from services.images import (
    TOO_MANY_PIXELS,
    TOO_MANY_WEBP_PIXELS,
    ImageError,
    delete_event_image,
    store_event_image,
)
from tests.support.factories import image_bytes

MAX_BYTES = 5 * 1024 * 1024
RANDOM_WEBP_NAME = re.compile(r"^[A-Za-z0-9_-]{24}\.webp$")


def store(data: bytes, folder) -> str:
    return store_event_image(data, folder=folder, max_bytes=MAX_BYTES)


def stored_image(folder, name: str) -> Image.Image:
    image = Image.open(folder / name)
    image.load()
    return image


def refusal(data: bytes, folder) -> str:
    """Store ``data`` expecting a refusal; check nothing was written and return the message."""
    with pytest.raises(ImageError) as caught:
        store(data, folder)
    assert caught.value.field == "image"
    assert not folder.exists() or list(folder.iterdir()) == []
    return str(caught.value)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return struct.pack(">I", len(body)) + kind + body + crc


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b""))


def jpeg_with_camera_metadata() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (51.0, 30.0, 12.0), 3: "W", 4: (0.0, 7.0, 39.0)})
    data = image_bytes("JPEG", exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825), "the fixture carries GPS"
    return data


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_real_picture_is_stored_as_webp_under_a_random_name(tmp_path, fmt):
    folder = tmp_path / "uploads"

    name = store(image_bytes(fmt, size=(64, 48)), folder)

    assert RANDOM_WEBP_NAME.match(name)
    image = stored_image(folder, name)
    assert image.format == "WEBP"
    assert image.size == (64, 48)


def test_the_same_picture_uploaded_twice_gets_two_unrelated_names(tmp_path):
    data = image_bytes("PNG")

    first, second = store(data, tmp_path), store(data, tmp_path)

    assert first != second
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first, second])


def test_a_text_file_named_like_a_picture_is_refused(tmp_path):
    message = refusal(b"just some text pretending to be photo.png\n" * 10, tmp_path / "uploads")
    assert "JPEG, PNG or WebP" in message


def test_a_gif_is_refused(tmp_path):
    message = refusal(image_bytes("GIF"), tmp_path / "uploads")
    assert "JPEG, PNG or WebP" in message


def test_a_truncated_picture_is_refused(tmp_path):
    data = image_bytes("PNG", size=(300, 300), color=(10, 200, 90))
    refusal(data[: len(data) // 2], tmp_path / "uploads")


def test_an_empty_file_is_refused(tmp_path):
    assert "empty" in refusal(b"", tmp_path / "uploads")


def test_a_picture_over_five_megabytes_is_refused(tmp_path):
    padded = image_bytes("PNG") + b"\0" * MAX_BYTES

    assert "at most 5 MB" in refusal(padded, tmp_path / "uploads")


def test_a_picture_of_exactly_the_size_limit_is_accepted(tmp_path):
    data = image_bytes("PNG")
    padded = data + b"\0" * (MAX_BYTES - len(data))

    assert RANDOM_WEBP_NAME.match(store(padded, tmp_path))


def test_camera_and_gps_metadata_do_not_survive(tmp_path):
    name = store(jpeg_with_camera_metadata(), tmp_path)

    image = stored_image(tmp_path, name)
    assert dict(image.getexif()) == {}
    assert b"SpyCam" not in (tmp_path / name).read_bytes()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("size, upright", [
    ((400, 200), (200, 400)),
    ((3200, 1600), (800, 1600)),  # shrunk while decoding or before turning
])
def test_a_photo_taken_sideways_is_stored_upright(tmp_path, fmt, size, upright):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned a quarter

    name = store(image_bytes(fmt, size=size, exif=exif), tmp_path)

    assert stored_image(tmp_path, name).size == upright


def test_anything_hidden_after_the_picture_is_dropped(tmp_path):
    polyglot = image_bytes("PNG") + b"<?php system($_GET['c']); ?>"

    name = store(polyglot, tmp_path)

    assert b"<?php" not in (tmp_path / name).read_bytes()


@pytest.mark.parametrize(
    "size, expected",
    [
        ((4000, 1000), (1600, 400)),
        ((4000, 3000), (1600, 1200)),  # a 12 megapixel phone photo
        ((900, 3000), (480, 1600)),
        ((1600, 1600), (1600, 1600)),
        ((200, 100), (200, 100)),  # small pictures are not blown up
    ],
)
def test_big_pictures_are_shrunk_to_at_most_1600_pixels_a_side(tmp_path, size, expected):
    name = store(image_bytes("JPEG", size=size), tmp_path)

    assert stored_image(tmp_path, name).size == expected


@pytest.mark.parametrize(
    "width, height",
    [
        (20_000, 20_000),  # far past Pillow's own bomb limit: it raises
        (10_000, 10_000),  # past Pillow's warning threshold
        (4_001, 3_000),  # just past our 12 megapixel limit
    ],
)
def test_a_decompression_bomb_is_refused_cleanly(tmp_path, width, height):
    message = refusal(png_declaring(width, height), tmp_path / "uploads")
    # A sentence for the form that names the limit, not Pillow's own complaint.
    assert message == TOO_MANY_PIXELS
    assert "12 megapixels" in message


def blank_png(width: int, height: int) -> bytes:
    """A real, complete greyscale PNG, compressed row by row: a few KB for millions of
    pixels, built without ever holding them."""
    compressor, rows = zlib.compressobj(9), []
    row = b"\x00" * (width + 1)  # filter byte, then one byte per pixel
    for _ in range(height):
        rows.append(compressor.compress(row))
    rows.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", b"".join(rows)) + png_chunk(b"IEND", b""))


def test_a_small_file_holding_a_huge_picture_is_refused_before_decoding(tmp_path):
    data = blank_png(6300, 6300)  # the security review's 40 megapixel picture
    assert len(data) < 200_000
    assert Image.open(io.BytesIO(data)).size == (6300, 6300)

    assert refusal(data, tmp_path / "uploads") == TOO_MANY_PIXELS


def test_a_picture_of_twelve_megapixels_is_accepted(tmp_path):
    name = store(blank_png(4000, 3000), tmp_path)

    assert stored_image(tmp_path, name).size == (1600, 1200)


def big_jpeg(size, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize(size).save(buffer, format="JPEG", **save_args)
    return buffer.getvalue()


def test_a_big_photo_is_decoded_at_a_fraction_of_its_size(tmp_path):
    # 48 megapixels: a baseline JPEG decodes straight at 1/4 scale, so it is welcome...
    name = store(big_jpeg((8000, 6000)), tmp_path)
    assert stored_image(tmp_path, name).size == (1600, 1200)

    # ...but a progressive one buffers the whole picture while decoding: over the limit.
    assert refusal(big_jpeg((8000, 6000), progressive=True), tmp_path / "other") == (
        TOO_MANY_PIXELS)


def test_a_webp_picture_has_its_own_smaller_limit(tmp_path):
    assert RANDOM_WEBP_NAME.match(store(image_bytes("WEBP", size=(2400, 1600)), tmp_path))

    message = refusal(image_bytes("WEBP", size=(2600, 1600)), tmp_path / "uploads")
    assert message == TOO_MANY_WEBP_PIXELS
    assert "4 megapixels" in message


_MEASURE = """
import io, resource, sys, tempfile
from pathlib import Path
from PIL import Image
from services.images import store_event_image

def store(data):
    store_event_image(data, folder=Path(tempfile.mkdtemp()), max_bytes=5 << 20)

for fmt in ("PNG", "JPEG", "WEBP"):  # load every codec first
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format=fmt)
    store(buffer.getvalue())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
store(Path(sys.argv[1]).read_bytes())
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_the_largest_picture_accepted_costs_a_bounded_amount_of_memory(tmp_path):
    # Pixel buffers are Pillow's own (tracemalloc can't see them): measure the peak size
    # of a fresh process instead. A 12 megapixel picture with transparency is the worst
    # case: 48 MB decoded. A loose bound: no second full-size copy on top of it.
    picture = tmp_path / "big.png"
    Image.new("RGBA", (4000, 3000), (200, 30, 30, 128)).save(picture)

    result = subprocess.run([sys.executable, "-c", _MEASURE, str(picture)], cwd=PROJECT_DIR,
                            capture_output=True, text=True, check=True)

    assert int(result.stdout) < 90  # MB


def test_deleting_an_image_removes_its_file_and_tolerates_a_missing_one(tmp_path):
    name = store(image_bytes("PNG"), tmp_path)

    delete_event_image(name, folder=tmp_path)
    delete_event_image(name, folder=tmp_path)
    delete_event_image(None, folder=tmp_path)

    assert not (tmp_path / name).exists()
