"""Draw a printed receipt as a PNG: what a person would see on the paper.

203 dpi thermal paper: 576 dots across 80 mm (48 columns), 384 across 58 mm
(32 columns), font A is 12 × 24 dots. DejaVu Sans Mono when installed
(Debian ``fonts-dejavu-core``), Pillow's built-in font otherwise.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .emulator import Barcode, Feed, PrintedReceipt, QRCode, Raster, TextLine

CELL_W, CELL_H, LINE_GAP = 12, 24, 6
MARGIN = 16  # white paper edge around the printable area, so the PNG looks like a slip
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]


@cache
def _font(bold: bool, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    for folder in FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), px)
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _x(align: str, width: int, dots: int) -> int:
    return {"center": (dots - width) // 2, "right": dots - width}.get(align, 0)


def _text_line(line: TextLine) -> Image.Image:
    height = max((s.height for s in line.segments), default=1) * CELL_H
    width = sum(len(s.text) * s.width * CELL_W for s in line.segments)
    img = Image.new("L", (max(width, 1), height + LINE_GAP), 255)
    x = 0
    for seg in line.segments:
        if not seg.text:
            continue
        # Glyphs drawn at the full height, then squeezed to the width multiplier:
        # sharp like a printer's scaled font, not a blurred upscale.
        h = seg.height
        cell = Image.new("L", (len(seg.text) * CELL_W * h, CELL_H * h), 255)
        draw = ImageDraw.Draw(cell)
        font = _font(seg.bold, 20 * h)
        for i, char in enumerate(seg.text):
            draw.text((i * CELL_W * h + 6 * h, 12 * h), char, font=font, fill=0, anchor="mm")
        if seg.width != h:
            cell = cell.resize((len(seg.text) * CELL_W * seg.width, CELL_H * h), Image.Resampling.LANCZOS)
        img.paste(cell, (x, height - cell.height))  # baseline-aligned, as on paper
        x += cell.width
    return img


def _qr(el: QRCode) -> Image.Image:
    import qrcode

    ec = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
          "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}[el.ec]
    code = qrcode.QRCode(error_correction=ec, box_size=max(1, el.module), border=0)
    code.add_data(el.data)
    code.make(fit=True)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("L")


def _barcode(el: Barcode) -> Image.Image:
    bars = None
    if el.kind == 73:
        try:
            from barcode import Code128  # python-barcode, installed with python-escpos

            bars = Code128(el.data).build()[0]
        except Exception:
            bars = None
    if bars is None:  # an unknown symbology: draw a placeholder, the text still says what it was
        bars = "1010" * 20
    height = max(el.height, 1)
    hri = el.hri in (2, 3)
    img = Image.new("L", (len(bars) * el.module, height + (CELL_H + 4 if hri else 0)), 255)
    draw = ImageDraw.Draw(img)
    for i, bit in enumerate(bars):
        if bit == "1":
            draw.rectangle([i * el.module, 0, (i + 1) * el.module - 1, height - 1], fill=0)
    if hri:
        draw.text((img.width // 2, height + 4 + CELL_H // 2), el.data, font=_font(False, 20), fill=0, anchor="mm")
    return img


def _raster(el: Raster) -> Image.Image:
    img = Image.frombytes("1", (el.width_bytes * 8, el.height), el.bits)
    return Image.eval(img.convert("L"), lambda v: 255 - v)  # set bits are black dots


def draw(receipt: PrintedReceipt) -> Image.Image:
    dots = 576 if receipt.width_mm == 80 else 384
    blocks: list[tuple[Image.Image, str]] = []
    for el in receipt.elements:
        if isinstance(el, TextLine):
            blocks.append((_text_line(el), el.align))
        elif isinstance(el, Feed):
            blocks.append((Image.new("L", (1, el.lines * (CELL_H + LINE_GAP)), 255), "left"))
        elif isinstance(el, QRCode):
            blocks.append((_qr(el), el.align))
        elif isinstance(el, Barcode) and el.printed:  # wider than the paper: the printer leaves it out
            blocks.append((_barcode(el), el.align))
        elif isinstance(el, Raster):
            blocks.append((_raster(el), el.align))
    height = sum(b.height for b, _ in blocks) + 2 * MARGIN
    page = Image.new("L", (dots + 2 * MARGIN, max(height, 2 * MARGIN + 1)), 255)
    y = MARGIN
    for block, align in blocks:
        block = block.crop((0, 0, min(block.width, dots), block.height))
        page.paste(block, (MARGIN + _x(align, block.width, dots), y))
        y += block.height
    if not receipt.complete:  # show where the paper ran out
        d = ImageDraw.Draw(page)
        d.line([(0, page.height - 2), (page.width, page.height - 2)], fill=0, width=3)
    return page


def save(receipt: PrintedReceipt, path: Path) -> Path:
    draw(receipt).save(path, optimize=True)
    return path
