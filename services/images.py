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
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before they cost memory


class ImageError(ServiceError):
    def __init__(self, message: str):
        super().__init__(message, field="image")


def _decode(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ACCEPTED_FORMATS:
                raise ImageError("Images must be JPEG, PNG or WebP pictures.")
            if probe.width * probe.height > MAX_PIXELS:
                raise ImageError("That image has too many pixels. Use one under 40 megapixels.")
            probe.verify()  # structural check; the image must be reopened after it
            image = Image.open(io.BytesIO(data))
            image.load()
            return image
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("That image has too many pixels. Use one under 40 megapixels.")
    except UnidentifiedImageError:
        raise ImageError("That file isn't a JPEG, PNG or WebP picture we can read.")
    except (OSError, SyntaxError, ValueError):
        raise ImageError("That file isn't a JPEG, PNG or WebP picture we can read.")


def store_event_image(data: bytes, *, folder: Path, max_bytes: int) -> str:
    """Validate ``data``, store a re-encoded copy in ``folder`` and return its file name."""
    if not data:
        raise ImageError("The image file is empty.")
    if len(data) > max_bytes:
        raise ImageError(f"Images can be at most {max_bytes // (1024 * 1024)} MB.")
    image = _decode(data)
    image = ImageOps.exif_transpose(image)  # keep the orientation the phone meant
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.webp"
    image.save(folder / name, format="WEBP", quality=82, method=4)
    return name


def delete_event_image(name: str | None, *, folder: Path) -> None:
    if name:
        (folder / name).unlink(missing_ok=True)
