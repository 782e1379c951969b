"""R42: the QR image of a dynamic code, as inline SVG (no file, no external service)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathImage

ET.register_namespace("", "http://www.w3.org/2000/svg")


def qr_svg(token: str, *, label: str = "") -> str:
    """Inline SVG markup of ``token`` as a QR code; it scales to its container (no fixed size).

    Error correction M: a phone screen with a crack or glare still scans. ``label`` becomes the
    image's accessible name (``aria-label``).
    """
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, image_factory=SvgPathImage)
    code.add_data(token)
    code.make(fit=True)
    svg = code.make_image().get_image()
    # The library sizes in millimetres; the page decides the size instead (the viewBox keeps the shape).
    svg.attrib.pop("width", None)
    svg.attrib.pop("height", None)
    svg.set("role", "img")
    svg.set("shape-rendering", "crispEdges")
    if label:
        svg.set("aria-label", label)
    return ET.tostring(svg, encoding="unicode")
