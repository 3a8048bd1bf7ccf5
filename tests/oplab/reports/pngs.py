"""Checking that report charts are real images: PNG bytes out of a data URI or a file, decoded."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from matplotlib.image import imread

from oplab.reports.charts import PNG_SIGNATURE

DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def embedded_pngs(html: str) -> list[bytes]:
    """Every PNG embedded in ``html`` as a data URI, decoded."""
    return [base64.b64decode(m) for m in DATA_URI.findall(html)]


def assert_real_chart(png: bytes) -> None:
    """A PNG (signature) that decodes to a chart-sized picture with many colours: something was drawn."""
    assert png.startswith(PNG_SIGNATURE)
    pixels = imread(io.BytesIO(png), format="png")
    height, width = pixels.shape[:2]
    assert width >= 400 and height >= 200, (width, height)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 20, f"only {len(colours)} colours: an empty canvas"
