#!/usr/bin/env python3
"""Independent reference for ocr.core.cos_sign (Tencent COS "q-sign").

Implemented from the algorithm text (vendors/CONTRACTS.md, tencent section; the official
"Request Signature" document), using only hashlib/hmac/urllib -- never from the C code.
Run once: `python3 spec/tools/qsign_vectors.py`; it first checks itself against the two worked
examples in Tencent's documentation, then prints the vectors pasted into spec/cos_sign_spec.lua.
"""
import hashlib
import hmac
import json
from urllib.parse import quote


def enc(s):
    # RFC 3986: only A-Za-z0-9-_.~ stay bare (quote() never escapes those), hex is uppercase.
    return quote(s.encode("utf-8"), safe="")


def pairs(d):
    items = sorted((enc(k).lower(), enc(v)) for k, v in d.items())
    return "&".join(k + "=" + v for k, v in items), ";".join(k for k, _ in items)


def qsign(secret_id, secret_key, method, path, params, headers, start, expire):
    key_time = "%d;%d" % (start, expire)
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    pstr, plist = pairs(params)
    hstr, hlist = pairs(headers)
    http_string = method.lower() + "\n" + path + "\n" + pstr + "\n" + hstr + "\n"
    sts = "sha1\n" + key_time + "\n" + hashlib.sha1(http_string.encode()).hexdigest() + "\n"
    sig = hmac.new(sign_key.encode(), sts.encode(), hashlib.sha1).hexdigest()
    return ("q-sign-algorithm=sha1&q-ak=%s&q-sign-time=%s&q-key-time=%s&q-header-list=%s"
            "&q-url-param-list=%s&q-signature=%s" % (secret_id, key_time, key_time, hlist, plist, sig))


DOC_ID, DOC_KEY = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"

# Tencent's worked examples (cloud.tencent.com/document/product/436/7778, "Use Case").
doc_put = qsign(DOC_ID, DOC_KEY, "PUT", "/exampleobject(腾讯云)", {}, {
    "Date": "Thu, 16 May 2019 06:45:51 GMT",
    "Host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
    "Content-Type": "text/plain", "Content-Length": "13",
    "Content-MD5": "mQ/fVh815F3k6TAUm8m0eg==", "x-cos-acl": "private",
    "x-cos-grant-read": 'uin="100000000011"'}, 1557989151, 1557996351)
assert doc_put.endswith("q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172"), doc_put
doc_get = qsign(DOC_ID, DOC_KEY, "GET", "/exampleobject(腾讯云)", {
    "response-content-type": "application/octet-stream",
    "response-cache-control": "max-age=600"}, {
    "Date": "Thu, 16 May 2019 06:55:53 GMT",
    "Host": "examplebucket-1250000000.cos.ap-beijing.myqcloud.com"}, 1557989753, 1557996953)
assert doc_get.endswith("q-signature=01681b8c9d798a678e43b685a9f1bba0f6c0e012"), doc_get

CASES = {
    "ocr_get": dict(method="GET", path="/scan/page 1.jpg", start=1700000000, expire=1700003600,
                    params={"ci-process": "OCR", "type": "general", "language-type": "zh",
                            "ispdf": "false", "pdf-pagenumber": "1"},
                    headers={"Host": "ex-1250000000.cos.ap-beijing.myqcloud.com"}),
    "unicode": dict(method="put", path="/目录/文件 名.pdf", start=0, expire=0,
                    params={"前缀": "值 一", "Key With Space": "a+b/c"},
                    headers={"Content-Type": "image/jpeg", "X-COS-Meta-名字": "张三",
                             "x-cos-security-token": "tok/en+with=chars ",
                             "Host": "b-1.cos.ap-guangzhou.myqcloud.com"}),
    "empty_values": dict(method="Get", path="/", start=1, expire=2,
                         params={"uploads": "", "acl": "", "prefix": "a b", "max-keys": "20"},
                         headers={}),
    "sorting": dict(method="HEAD", path="/k", start=10, expire=20,
                    params={"b": "2", "B_": "3", "a~": "1", "A.": "0", "a-": "x", "Z": "z"},
                    headers={"X-Ci-Foo": "~-._", "x-cos-b": "!*'()", "x-cos-A": "%41"}),
}

if __name__ == "__main__":
    out = {}
    for name, c in CASES.items():
        out[name] = qsign("AKIDexample", "secret-key-value", c["method"], c["path"],
                          c["params"], c["headers"], c["start"], c["expire"])
    out["doc_put"], out["doc_get"] = doc_put, doc_get
    print(json.dumps(out, ensure_ascii=False, indent=1))
