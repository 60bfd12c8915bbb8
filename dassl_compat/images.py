"""Images as 8-bit RGB, whatever their bit depth: the one conversion every image reader here uses.

PIL's `convert("RGB")` clips high-bit-depth images instead of scaling them (a 16-bit PNG, mode I;16,
becomes white wherever a value exceeds 255). Here their values are scaled to 0..255 first:
- I;16, I;16L, I;16B, I;16N (16-bit grey): value / 65535;
- I (32-bit integers, how PIL reads 16-bit grey from some TIFF and older PNG readers): value / 65535,
  or / its maximum when that is larger;
- F (32-bit float): values in [0, 1] as they are (the usual convention), otherwise / their maximum;
negative values become 0. 16-bit colour images are reduced to 8 bits per channel by PIL itself when it
reads them (mode RGB or RGBA); every other mode goes through `convert("RGB")` as before.
"""
import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb8(image):
    """A PIL image of any mode -> an 8-bit RGB PIL image, high-bit-depth values scaled (module docstring)."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64).clip(min=0)
        peak = values.max(initial=0.0)
        if image.mode == "F":
            scale = 1.0 if peak <= 1.0 else peak
        else:
            scale = max(65535.0, peak) if image.mode == "I" else 65535.0
        image = Image.fromarray(np.round(values / scale * 255).astype(np.uint8))  # mode L
    return image.convert("RGB")
