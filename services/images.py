"""Event images: accept only real JPEG, PNG or WebP pictures and store a clean copy.

The upload is decoded with Pillow (the extension and the declared type are ignored),
then re-encoded as WebP at most 1600 px on its longer side. Re-encoding drops EXIF and
every other metadata block (GPS positions from phones included) and anything appended
to the file; the stored name is random, so it reveals nothing and cannot be guessed.
"""

from __future__ import annotations

import io
import secrets
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from services import ServiceError

ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_SIDE = 1600
# At most this many pixels are ever decoded (48 MB as RGBA): a small file can declare a
# huge picture, and six 40 MP pictures at once took a worker past 2 GB.
MAX_PIXELS = 12_000_000
TOO_MANY_PIXELS = ("That picture has too many pixels: pictures can be at most 12 megapixels "
                   "(for example 4000 × 3000).")
# Pillow decodes WebP through libwebp's animation decoder, which keeps two canvases of its
# own besides Pillow's copy: a WebP costs about four times a PNG of the same size.
MAX_WEBP_PIXELS = 4_000_000
TOO_MANY_WEBP_PIXELS = ("That WebP picture has too many pixels: WebP pictures can be at most "
                        "4 megapixels (for example 2400 × 1600). Larger ones can be JPEG or PNG.")
UNREADABLE = "That file isn't a JPEG, PNG or WebP picture we can read."


class ImageError(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, field="image")


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled down to at most ``MAX_SIDE`` on its longer side."""
    width, height = size
    scale = min(1.0, MAX_SIDE / max(width, height))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _decode(data: bytes) -> Image.Image:
    """Open, check and decode ``data``, never holding more than ``MAX_PIXELS`` pixels.

    A baseline JPEG is decoded straight at 1/2, 1/4 or 1/8 scale (``draft``), so a phone's
    24 MP photo costs a few MB. A progressive JPEG buffers every coefficient of the full
    picture, and PNG and WebP decode in full, so those are refused above their limit from
    the header, before any decoding.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ACCEPTED_FORMATS:
                raise ImageError("Images must be JPEG, PNG or WebP pictures.")
            scalable = probe.format == "JPEG" and not probe.info.get("progressive")
            if not scalable and probe.width * probe.height > MAX_PIXELS:
                raise ImageError(TOO_MANY_PIXELS)
            if probe.format == "WEBP" and probe.width * probe.height > MAX_WEBP_PIXELS:
                raise ImageError(TOO_MANY_WEBP_PIXELS)
            probe.verify()  # structural check; the image must be reopened after it
            image = Image.open(io.BytesIO(data))
            if scalable:
                image.draft(None, _fit(image.size))
            if image.width * image.height > MAX_PIXELS:  # still too big at 1/8 scale
                raise ImageError(TOO_MANY_PIXELS)
            image.load()
            return image
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(TOO_MANY_PIXELS) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageError(UNREADABLE) from None


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """``image`` box-averaged by ``factor``. Pillow reduces a picture with transparency
    through a premultiplied copy of the whole of it; band by band of rows, that copy
    stays small."""
    if factor <= 1:
        return image
    if image.mode not in ("RGBA", "LA"):
        return image.reduce(factor)
    rows = factor * 64
    reduced = Image.new(image.mode, (-(-image.width // factor), -(-image.height // factor)))
    reduced.info = image.info.copy()  # the orientation is read after shrinking
    for top in range(0, image.height, rows):
        band = image.crop((0, top, image.width, min(top + rows, image.height)))
        reduced.paste(band.reduce(factor), (0, top // factor))
    return reduced


def store_event_image(data: bytes, *, folder: Path, max_bytes: int) -> str:
    """Validate ``data``, store a re-encoded copy in ``folder`` and return its file name."""
    if not data:
        raise ImageError("The image file is empty.")
    if len(data) > max_bytes:
        raise ImageError(f"Images can be at most {max_bytes // (1024 * 1024)} MB.")
    image = _decode(data)
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if has_alpha else "RGB"
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert(mode)  # palettes and 16-bit samples can't be resampled well
    # Shrink before anything copies the picture: a whole-factor box average first, then a
    # proper resample of the small result.
    image = _reduce(image, min(w // t for w, t in zip(image.size, _fit(image.size))))
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    image = ImageOps.exif_transpose(image)  # keep the orientation the phone meant
    image = image.convert(mode)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.webp"
    image.save(folder / name, format="WEBP", quality=82, method=4)
    return name


def delete_event_image(name: str | None, *, folder: Path) -> None:
    if name:
        (folder / name).unlink(missing_ok=True)
