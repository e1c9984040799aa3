"""Event images (services/images.py): only real pictures get in, and only a clean copy is kept.

Warnings are errors in this suite, so a decompression-bomb warning that escaped the
service would fail these tests as surely as an exception would.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image

from services.images import ImageError, delete_event_image, store_event_image
from tests.conftest import image_bytes

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


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


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


def test_anything_hidden_after_the_picture_is_dropped(tmp_path):
    polyglot = image_bytes("PNG") + b"<?php system($_GET['c']); ?>"

    name = store(polyglot, tmp_path)

    assert b"<?php" not in (tmp_path / name).read_bytes()


@pytest.mark.parametrize(
    "size, expected",
    [
        ((4000, 1000), (1600, 400)),
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
        (7_000, 7_000),  # past our 40 megapixel limit only
    ],
)
def test_a_decompression_bomb_is_refused_cleanly(tmp_path, width, height):
    message = refusal(png_declaring(width, height), tmp_path / "uploads")
    # A sentence for the form, not Pillow's own complaint.
    assert message in (
        "That file isn't a JPEG, PNG or WebP picture we can read.",
        "That image has too many pixels. Use one under 40 megapixels.",
    )


def test_deleting_an_image_removes_its_file_and_tolerates_a_missing_one(tmp_path):
    name = store(image_bytes("PNG"), tmp_path)

    delete_event_image(name, folder=tmp_path)
    delete_event_image(name, folder=tmp_path)
    delete_event_image(None, folder=tmp_path)

    assert not (tmp_path / name).exists()
