#!/usr/bin/env python3
"""Independent multipart/form-data parser for spec/multipart_spec.lua.

Usage: parse_multipart.py FILE
FILE holds a whole MIME entity: `Content-Type: <multipart/form-data; boundary=...>\\r\\n\\r\\n`
followed by the body. It is parsed with the standard library's email package
(email.parser.BytesParser, policy=email.policy.default) and one JSON object is printed:
  {"boundary", "multipart", "defects": [...], "parts": [{"disposition", "name_hex",
   "filename_hex" (or null), "has_content_type", "content_type", "disposition_hex", "data_hex"}]}
Names, filenames and data are hex of the exact bytes so the spec can compare them byte for byte
(header bytes that are not ASCII come back from the parser as surrogate escapes and are turned
back into the original bytes here). Nothing is unescaped beyond what the email package does.
"""
import json
import sys
from email import policy
from email.parser import BytesParser


def raw_hex(s):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s.hex()
    return str(s).encode("utf-8", "surrogateescape").hex()


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    # parsebytes, not parse(f): parse() reads through a text wrapper with universal newlines,
    # which turns a lone CR inside binary data into LF.
    msg = BytesParser(policy=policy.default).parsebytes(data)
    out = {"boundary": msg.get_boundary(), "multipart": msg.is_multipart(),
           "defects": [type(d).__name__ for d in msg.defects], "parts": []}
    if msg.is_multipart():
        for part in msg.iter_parts():
            out["defects"] += [type(d).__name__ for d in part.defects]
            out["parts"].append({
                "disposition": part.get_content_disposition(),
                "name_hex": raw_hex(part.get_param("name", header="content-disposition")),
                "filename_hex": raw_hex(part.get_param("filename", header="content-disposition")),
                "has_content_type": "Content-Type" in part,
                "content_type": part.get_content_type(),
                "disposition_hex": raw_hex(part.get("Content-Disposition")),
                "data_hex": raw_hex(part.get_payload(decode=True)),
            })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
