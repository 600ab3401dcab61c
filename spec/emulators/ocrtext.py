"""The "fake OCR" shared by the vendor emulators, so every emulator recognises the same text from
the same bytes and a spec can choose what a file "says".

Convention:
  * the recognised text of an uploaded file is the UTF-8 text after the first occurrence of the
    marker `TEXT:` in its bytes (invalid UTF-8 is replaced by U+FFFD), so a spec uploads
    b"\\x89PNG\\r\\n\\x1a\\n...TEXT:Hello\\n你好世界";
  * a file without the marker recognises as the emulator's `default_text` setting;
  * a URL source recognises as the emulator's `url_text` setting;
  * lines are separated by "\\n" ("\\r\\n" counts as one separator); empty lines are not text
    lines (an OCR engine detects no line there);
  * pages are separated by "\\f" (form feed), for vendors that recognise one page of a PDF.

Geometry is deterministic so specs can assert it: a line is LINE_HEIGHT px high, lines are stacked
from (LEFT, TOP) with LINE_GAP px between them, every character is CHAR_WIDTH px wide except East
Asian wide/fullwidth characters, which are twice as wide.
"""
import re
import unicodedata
import zlib

DEFAULT_TEXT = "lua-ocr emulator\n模拟器"
MARKER = b"TEXT:"

LEFT, TOP = 20, 20
LINE_HEIGHT, LINE_GAP = 32, 8
CHAR_WIDTH = 16

# (name, magic bytes at offset 0). Order matters only for readability.
MAGIC = [
    ("png", b"\x89PNG\r\n\x1a\n"),
    ("jpeg", b"\xff\xd8\xff"),
    ("gif", b"GIF87a"),
    ("gif", b"GIF89a"),
    ("bmp", b"BM"),
    ("pdf", b"%PDF"),
    ("zip", b"PK\x03\x04"),          # docx / xlsx / pptx
    ("ole", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),  # doc / xls / ppt
    ("tiff", b"II*\x00"),
    ("tiff", b"MM\x00*"),
    ("webp", b"RIFF"),               # completed by the WEBP check below
]


def detect_format(data):
    """The format name of `data` by magic number, or None."""
    for name, magic in MAGIC:
        if data.startswith(magic):
            if name == "webp" and data[8:12] != b"WEBP":
                continue
            return name
    return None


def text_of(data, default=DEFAULT_TEXT):
    """The recognised text of a file's bytes (see the module docstring)."""
    i = data.find(MARKER)
    if i < 0:
        return default
    return data[i + len(MARKER):].decode("utf-8", "replace")


def lines_of(text):
    """Non-empty text lines, "\\r\\n" and "\\n" both ending a line."""
    return [ln for ln in text.replace("\r\n", "\n").split("\n") if ln != ""]


def pages_of(text):
    """Pages separated by form feed; always at least one page."""
    return text.split("\f")


def char_units(ch):
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width_units(s):
    return sum(char_units(c) for c in s)


def confidence(s):
    """A deterministic confidence 80..99 for a piece of text: 80 + crc32(utf8) % 20."""
    return 80 + zlib.crc32(s.encode("utf-8")) % 20


def line_box(index, line):
    """(x, y, width, height) of the index-th (0-based) line."""
    return (LEFT, TOP + index * (LINE_HEIGHT + LINE_GAP), max(1, width_units(line)) * CHAR_WIDTH,
            LINE_HEIGHT)


def tokens_of(line):
    """Splits a line into OCR "words": every wide (CJK) character is its own word, runs of other
    non-space characters are one word (Latin words). Yields (token, unit_offset)."""
    out = []
    units = 0
    cur, cur_start = "", 0
    for ch in line:
        u = char_units(ch)
        if ch.isspace() or u == 2:
            if cur:
                out.append((cur, cur_start))
                cur = ""
            if u == 2 and not ch.isspace():
                out.append((ch, units))
        else:
            if not cur:
                cur_start = units
            cur += ch
        units += u
    if cur:
        out.append((cur, cur_start))
    return out


def token_boxes(index, line):
    """[(token, x, y, width, height)] for the words of the index-th line."""
    x0, y0, _, h = line_box(index, line)
    return [(tok, x0 + off * CHAR_WIDTH, y0, width_units(tok) * CHAR_WIDTH, h)
            for tok, off in tokens_of(line)]


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_escape(s):
    """Escapes text for XML character data and attribute values. Characters XML 1.0 cannot carry
    at all (C0 controls other than tab/LF/CR, even as references) become U+FFFD."""
    s = _XML_INVALID.sub("\ufffd", s)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))
