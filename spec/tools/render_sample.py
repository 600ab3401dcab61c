#!/usr/bin/python3
"""Renders a sample page for the tesseract specs from its exact text.

    /usr/bin/python3 spec/tools/render_sample.py examples/sample.txt examples/sample.png
    /usr/bin/python3 spec/tools/render_sample.py --cjk examples/sample-chi.txt examples/sample-chi.png
    /usr/bin/python3 spec/tools/render_sample.py spec/fixtures/tiff/page1.txt \
        spec/fixtures/tiff/page2.txt spec/fixtures/tiff/pages.tif
    /usr/bin/python3 spec/tools/render_sample.py spec/fixtures/tiff/page1.txt spec/fixtures/jpeg/page1.jpg
    /usr/bin/python3 spec/tools/render_sample.py --rotate 90 spec/fixtures/tiff/page1.txt \
        spec/fixtures/rotated/page1-ccw90.png
    for ext in bmp gif webp; do /usr/bin/python3 spec/tools/render_sample.py \
        spec/fixtures/tiff/page1.txt spec/fixtures/formats/page1.$ext; done

The text file is the reference: paragraphs are separated by blank lines, and each paragraph is
wrapped greedily to a 6.5-inch column (between words, or between any two characters with --cjk,
since Chinese has no spaces). The page is drawn black on white at 300 dpi in 12 pt type, cropped
to the text plus a half-inch margin, and saved as an 8-bit greyscale PNG carrying its resolution.
With several text files and a .tif output, each text is one page of a multi-page TIFF, 1-bit and
Group 4 compressed as a fax or a document scanner writes it. A .jpg output is a baseline JPEG
(quality 75), as a camera or a phone writes it. A .bmp is 1-bit (uncompressed BMP's smallest),
a .gif 8-bit greyscale, a .webp lossless. --rotate DEG turns each page counter-clockwise
(a page scanned sideways).

Only needed to (re)make the committed PNGs, not to build or test. Debian packages used:
python3-pil, fonts-liberation (Liberation Serif, metric-compatible with Times New Roman) and
fonts-wqy-microhei (WenQuanYi Micro Hei, for --cjk).
"""
import argparse
import sys

from PIL import Image, ImageDraw, ImageFont

DPI = 300
POINT = 12
MARGIN = DPI // 2
COLUMN = int(6.5 * DPI)
FONTS = {
    False: "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    True: "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
}


def wrap(para, font, cjk):
    """Greedy wrap to COLUMN pixels: word units, or single characters for CJK."""
    units = list(para) if cjk else para.split()
    sep = "" if cjk else " "
    lines, cur = [], ""
    for u in units:
        trial = cur + sep + u if cur else u
        if cur and font.getlength(trial) > COLUMN:
            lines.append(cur)
            cur = u
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cjk", action="store_true", help="wrap between characters, CJK font")
    ap.add_argument("--rotate", type=int, default=0, choices=(0, 90, 180, 270),
                    help="turn each page counter-clockwise by this many degrees")
    ap.add_argument("text", nargs="+", help="one text per page (several only for a .tif)")
    ap.add_argument("out", help="a .png, .jpg, .bmp, .gif or .webp (one page) or a .tif (one page per text)")
    args = ap.parse_args()

    tiff = args.out.endswith(".tif")
    if len(args.text) > 1 and not tiff:
        ap.error("several pages need a .tif output")
    pages = [render(path, args.cjk).rotate(args.rotate, expand=True) for path in args.text]
    if tiff:
        pages = [p.convert("1") for p in pages]
        pages[0].save(args.out, compression="group4", dpi=(DPI, DPI), save_all=True,
                      append_images=pages[1:])
    elif args.out.endswith(".jpg"):
        pages[0].save(args.out, quality=75, dpi=(DPI, DPI))
    elif args.out.endswith(".bmp"):
        pages[0].convert("1").save(args.out, dpi=(DPI, DPI))
    elif args.out.endswith(".webp"):
        pages[0].save(args.out, lossless=True)
    else:
        pages[0].save(args.out, optimize=True, dpi=(DPI, DPI))
    for i, p in enumerate(pages):
        print(f"{args.out}: page {i + 1}: {p.width}x{p.height}", file=sys.stderr)


def render(path, cjk):
    """One page: the text of `path` wrapped and drawn, an 8-bit greyscale image."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    font = ImageFont.truetype(FONTS[cjk], POINT * DPI // 72)
    line_h = int(POINT * DPI / 72 * 1.45)
    para_gap = line_h // 2

    if cjk:
        paras = ["".join(p.split()) for p in text.split("\n\n") if p.strip()]
    else:
        paras = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    layout = [wrap(p, font, cjk) for p in paras]
    n_lines = sum(len(p) for p in layout)
    height = 2 * MARGIN + n_lines * line_h + (len(layout) - 1) * para_gap
    width = 2 * MARGIN + COLUMN

    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    y = MARGIN
    for para in layout:
        for line in para:
            draw.text((MARGIN, y), line, font=font, fill=0)
            y += line_h
        y += para_gap
    return img


if __name__ == "__main__":
    main()
