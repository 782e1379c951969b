"""Pictures for face-verification tests, drawn in code (OpenCV ships no face photos).

The drawn face is a plain cartoon: a skin-toned oval with dark eyes and brows, a nose shadow and a
mouth, on a blue ID-photo background. OpenCV's frontal-face Haar cascade finds it, which is all the
local provider checks (one frontal face; never identity). Browser tests upload ``make_face_png()``.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFilter

BACKGROUND = (120, 140, 170)  # the blue of a Chinese ID photo
SKIN = (224, 172, 140)
CELL = (400, 480)  # one face per cell, side by side
FACE_WIDTH = 200


def _draw_face(draw: ImageDraw.ImageDraw, cx: int, cy: int, width: int) -> None:
    height = int(width * 1.3)
    draw.ellipse([cx - width // 2, cy - height // 2, cx + width // 2, cy + height // 2], fill=SKIN)
    eye_y = cy - int(height * 0.12)
    eye_w, eye_h = int(width * 0.16), int(width * 0.07)
    for side in (-1, 1):
        eye_x = cx + side * int(width * 0.2)
        draw.ellipse(
            [eye_x - eye_w // 2, eye_y - eye_h // 2, eye_x + eye_w // 2, eye_y + eye_h // 2], fill=(40, 30, 30)
        )
        brow_y = eye_y - int(height * 0.08)
        draw.rectangle(
            [eye_x - eye_w // 2 - 2, brow_y - int(eye_h * 0.4), eye_x + eye_w // 2 + 2, brow_y + int(eye_h * 0.4)],
            fill=(60, 40, 30),
        )
    nose = [
        (cx, eye_y),
        (cx - int(width * 0.07), cy + int(height * 0.1)),
        (cx + int(width * 0.07), cy + int(height * 0.1)),
    ]
    draw.polygon(nose, fill=(190, 140, 110))
    mouth_y = cy + int(height * 0.22)
    draw.ellipse(
        [cx - int(width * 0.18), mouth_y - int(height * 0.03), cx + int(width * 0.18), mouth_y + int(height * 0.03)],
        fill=(150, 60, 60),
    )


def make_face_image(
    count: int = 1, *, face_width: int = FACE_WIDTH, canvas: tuple[int, int] | None = None
) -> Image.Image:
    """``count`` faces side by side, each centred in its own cell; ``canvas`` makes the picture larger."""
    width, height = canvas or (CELL[0] * count, CELL[1])
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = width // max(count, 1)
    for index in range(count):
        _draw_face(draw, step * index + step // 2, height // 2, face_width)
    # A light blur, as a camera gives: hard drawn edges are less face-like to the cascade.
    return image.filter(ImageFilter.GaussianBlur(2))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_face_png(count: int = 1) -> bytes:
    """A PNG with ``count`` frontal faces (1: passes the local provider; 2: refused as several faces)."""
    return _png(make_face_image(count))


def make_blank_png(size: tuple[int, int] = CELL, colour: tuple[int, int, int] = BACKGROUND) -> bytes:
    """A PNG with no face at all."""
    return _png(Image.new("RGB", size, colour))
