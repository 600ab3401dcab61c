"""Tencent COS "q-sign" (XML API request signature), written from the algorithm text in
the vendor's signing reference and checked against the worked examples of the official document
(`python3 qsign.py selftest`). Independent of the C implementation under test (csrc/cos_sign.c).

  KeyTime      = "<start>;<end>"
  SignKey      = hex(HMAC-SHA1(SecretKey, q-key-time))
  encode(x)    = UTF-8 percent-encoding, only A-Za-z0-9 - _ . ~ bare, uppercase hex
  pairs        = for each signed param / header: (lower(encode(key)), encode(value)),
                 sorted by key, "k=v" joined by "&"; key lists joined by ";"
  HttpString   = lower(method) \\n path \\n params \\n headers \\n   (path NOT encoded)
  StringToSign = "sha1" \\n q-sign-time \\n hex(SHA1(HttpString)) \\n
  Signature    = hex(HMAC-SHA1(key = the 40-char hex SignKey string, StringToSign))

Everything here works on bytes. Verification (`verify`) takes the request exactly as received:
the raw path and raw query (as sent on the wire) and the received header list. What the server
signs: the path percent-decoded once (COS signs "/exampleobject(腾讯云)" for a request line
"/exampleobject(%E8%85%BE%E8%AE%AF%E4%BA%91)"), each query value percent-decoded once ('+' is a
literal plus, RFC 3986, not form encoding), header values as received.

CLI:
  python3 qsign.py selftest
  python3 qsign.py sign --ak ID --sk KEY --method get --path /k --start S --end E \\
                        [--param k=v ...] [--header k=v ...]      (path/values raw, not encoded)
"""
import hashlib
import hmac
import re
import sys
import urllib.parse

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
FIELDS = ("q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time", "q-header-list",
          "q-url-param-list", "q-signature")
TIME_RE = re.compile(r"^([0-9]{1,12});([0-9]{1,12})$")
HEX40_RE = re.compile(r"^[0-9a-f]{40}$")


def b(x):
    return x if isinstance(x, bytes) else x.encode("utf-8")


def encode(data):
    """RFC 3986 percent-encoding of bytes (or a str, as UTF-8); returns str."""
    out = []
    for c in b(data):
        out.append(chr(c) if c in UNRESERVED else "%%%02X" % c)
    return "".join(out)


def canonical(pairs):
    """[(key bytes, value bytes)] -> (key_list str, kv_string str). Raises ValueError when two
    keys collide once encoded and lowercased (the order would be ambiguous)."""
    enc = sorted((encode(k).lower(), encode(v)) for k, v in pairs)
    keys = [k for k, _ in enc]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key after encoding and lowercasing")
    return ";".join(keys), "&".join("%s=%s" % kv for kv in enc)


def hmac_sha1_hex(key, msg):
    return hmac.new(b(key), b(msg), hashlib.sha1).hexdigest()


def http_string(method, path, params, headers):
    _, p = canonical(params)
    _, h = canonical(headers)
    return b(method.lower()) + b"\n" + b(path) + b"\n" + p.encode() + b"\n" + h.encode() + b"\n"


def signature(secret_key, key_time, sign_time, method, path, params, headers):
    sign_key = hmac_sha1_hex(secret_key, key_time)
    hs = http_string(method, path, params, headers)
    sts = "sha1\n%s\n%s\n" % (sign_time, hashlib.sha1(hs).hexdigest())
    return hmac_sha1_hex(sign_key, sts)


def sign(secret_id, secret_key, method, path, params=(), headers=(), start=0, end=0):
    """The Authorization header value. params/headers: [(key, value)] raw (not encoded)."""
    kt = "%d;%d" % (start, end)
    params = [(b(k), b(v)) for k, v in params]
    headers = [(b(k), b(v)) for k, v in headers]
    plist, _ = canonical(params)
    hlist, _ = canonical(headers)
    sig = signature(secret_key, kt, kt, method, path, params, headers)
    return ("q-sign-algorithm=sha1&q-ak=%s&q-sign-time=%s&q-key-time=%s&q-header-list=%s"
            "&q-url-param-list=%s&q-signature=%s" % (secret_id, kt, kt, hlist, plist, sig))


# -- verification -----------------------------------------------------------------------------

class SignError(Exception):
    """code: the COS error code; status: the HTTP status."""

    def __init__(self, code, message, status=403):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def parse_query(raw_query):
    """Raw query string (as on the wire, str of latin-1 chars or bytes) -> [(key bytes, value
    bytes)], each percent-decoded once; a parameter without '=' has the value b""."""
    raw = raw_query.encode("latin-1") if isinstance(raw_query, str) else raw_query
    out = []
    for seg in raw.split(b"&"):
        if seg == b"":
            continue
        k, _, v = seg.partition(b"=")
        out.append((urllib.parse.unquote_to_bytes(k), urllib.parse.unquote_to_bytes(v)))
    return out


def parse_authorization(value):
    fields = {}
    for seg in value.split("&"):
        k, sep, v = seg.partition("=")
        if not sep or k in fields:
            raise SignError("AccessDenied", "Malformed Authorization: bad or repeated field %r."
                            % k)
        fields[k] = v
    missing = [f for f in FIELDS if f not in fields]
    if missing:
        raise SignError("AccessDenied", "Authorization is missing " + ", ".join(missing) + ".")
    unknown = [k for k in fields if k not in FIELDS]
    if unknown:
        raise SignError("AccessDenied", "Authorization has unknown field " + unknown[0] + ".")
    if fields["q-sign-algorithm"] != "sha1":
        raise SignError("AccessDenied", "q-sign-algorithm must be sha1.")
    for f in ("q-sign-time", "q-key-time"):
        if not TIME_RE.match(fields[f]):
            raise SignError("AccessDenied", "%s must be <start>;<end>." % f)
        s, e = (int(x) for x in fields[f].split(";"))
        if s > e:
            raise SignError("AccessDenied", "%s starts after it ends." % f)
    if not HEX40_RE.match(fields["q-signature"]):
        raise SignError("SignatureDoesNotMatch", "q-signature must be 40 lowercase hex digits.")
    return fields


def _split_list(s):
    return [] if s == "" else s.split(";")


def verify(method, raw_path, raw_query, header_list, credentials, now, max_skew=900,
           require_all_params_signed=True):
    """Checks the request's Authorization. header_list: [(name, value)] as received (str values
    carrying latin-1 bytes, as http.server gives them). credentials: {secret_id: {"key": ...,
    "token": optional}}. Returns the signing fields on success; raises SignError."""
    headers = {}
    for name, value in header_list:
        lname = name.lower()
        headers.setdefault(lname, []).append(value)
    auth = headers.get("authorization")
    if not auth:
        raise SignError("AccessDenied", "Access Denied.")
    if len(auth) > 1:
        raise SignError("AccessDenied", "More than one Authorization header.")
    fields = parse_authorization(auth[0])

    cred = credentials.get(fields["q-ak"])
    if cred is None:
        raise SignError("InvalidAccessKeyId", "The access key Id format you provided is invalid.")
    token = cred.get("token")
    if token is not None:
        sent = headers.get("x-cos-security-token")
        if not sent:
            raise SignError("InvalidAccessKeyId",
                            "A temporary SecretId needs the x-cos-security-token header.")
        if len(sent) > 1 or sent[0] != token:
            raise SignError("InvalidAccessKeyId", "The security token you provided is invalid.")

    start, end = (int(x) for x in fields["q-sign-time"].split(";"))
    if end < now:
        raise SignError("AccessDenied", "Request has expired")
    if start > now + max_skew:
        raise SignError("RequestTimeTooSkewed",
                        "The difference between the request time and the server's time is too "
                        "large.")

    # Header names are ASCII tokens, so their encoded lowercase form is the lowercase name.
    hlist = _split_list(fields["q-header-list"])
    if "host" not in hlist:
        raise SignError("AccessDenied", "The host header must be signed (q-header-list).")
    for name in headers:
        if (name.startswith("x-cos-") or name.startswith("x-ci-")) and name not in hlist:
            raise SignError("AccessDenied", "Header %s must be signed (q-header-list)." % name)
    signed_headers = []
    for name in hlist:
        vals = headers.get(name)
        if vals is None:
            raise SignError("SignatureDoesNotMatch",
                            "q-header-list names %s, which the request does not carry." % name)
        if len(vals) > 1:
            raise SignError("AccessDenied", "Signed header %s appears more than once." % name)
        signed_headers.append((name.encode("latin-1"), vals[0].encode("latin-1")))

    params = {}
    for k, v in parse_query(raw_query):
        ek = encode(k).lower()
        if ek in params:
            raise SignError("InvalidArgument", "Query parameter %s appears more than once." % ek,
                            400)
        params[ek] = (k, v)
    plist = _split_list(fields["q-url-param-list"])
    if require_all_params_signed:
        for ek in params:
            if ek not in plist:
                raise SignError("AccessDenied",
                                "Query parameter %s must be signed (q-url-param-list)." % ek)
    signed_params = []
    for ek in plist:
        if ek not in params:
            raise SignError("SignatureDoesNotMatch",
                            "q-url-param-list names %s, which the request does not carry." % ek)
        signed_params.append(params[ek])

    try:
        want_hlist, _ = canonical(signed_headers)
        want_plist, _ = canonical(signed_params)
    except ValueError as e:
        raise SignError("SignatureDoesNotMatch", str(e))
    if want_hlist != fields["q-header-list"] or want_plist != fields["q-url-param-list"]:
        raise SignError("SignatureDoesNotMatch",
                        "q-header-list / q-url-param-list must be sorted, lowercase, without "
                        "repeats.")

    raw = raw_path.encode("latin-1") if isinstance(raw_path, str) else raw_path
    path = urllib.parse.unquote_to_bytes(raw)
    want = signature(cred["key"], fields["q-key-time"], fields["q-sign-time"], method, path,
                     signed_params, signed_headers)
    if not hmac.compare_digest(want, fields["q-signature"]):
        raise SignError("SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your key and signing method.")
    return fields


# -- self test (official worked examples, cloud.tencent.com/document/product/436/7778) ----------

DOC_SECRET_KEY = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"   # the document's sample key, not a real one


def selftest():
    # Upload example: intermediate values as printed in the document.
    kt = "1557989151;1557996351"
    assert hmac_sha1_hex(DOC_SECRET_KEY, kt) == "eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f"
    headers = [(b"Date", b"Thu, 16 May 2019 06:45:51 GMT"),
               (b"Host", b"examplebucket-1250000000.cos.ap-beijing.myqcloud.com"),
               (b"Content-Type", b"text/plain"), (b"Content-Length", b"13"),
               (b"Content-MD5", b"mQ/fVh815F3k6TAUm8m0eg=="), (b"x-cos-acl", b"private"),
               (b"x-cos-grant-read", b'uin="100000000011"')]
    hlist, hstr = canonical(headers)
    assert hlist == "content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read"
    assert hstr == ("content-length=13&content-md5=mQ%2FfVh815F3k6TAUm8m0eg%3D%3D&content-type="
                    "text%2Fplain&date=Thu%2C%2016%20May%202019%2006%3A45%3A51%20GMT&host="
                    "examplebucket-1250000000.cos.ap-beijing.myqcloud.com&x-cos-acl=private&"
                    "x-cos-grant-read=uin%3D%22100000000011%22")
    path = urllib.parse.unquote_to_bytes("/exampleobject(%E8%85%BE%E8%AE%AF%E4%BA%91)")
    assert hashlib.sha1(http_string("PUT", path, [], headers)).hexdigest() == \
        "8b2751e77f43a0995d6e9eb9477f4b685cca4172"
    # The document masks the last 4 hex digits of its signatures.
    sig = signature(DOC_SECRET_KEY, kt, kt, "PUT", path, [], headers)
    assert sig.startswith("3b8851a11a569213c17ba8fa7dcf2abec693"), sig
    # Download example.
    kt = "1557989753;1557996953"
    assert hmac_sha1_hex(DOC_SECRET_KEY, kt) == "937914bf490e9e8c189836aad2052e4feeb35eaf"
    params = parse_query("response-content-type=application%2Foctet-stream&"
                         "response-cache-control=max-age%3D600")
    headers = [(b"Date", b"Thu, 16 May 2019 06:55:53 GMT"),
               (b"Host", b"examplebucket-1250000000.cos.ap-beijing.myqcloud.com")]
    assert canonical(params) == ("response-cache-control;response-content-type",
                                 "response-cache-control=max-age%3D600&response-content-type="
                                 "application%2Foctet-stream")
    assert hashlib.sha1(http_string("GET", path, params, headers)).hexdigest() == \
        "54ecfe22f59d3514fdc764b87a32d8133ea611e6"
    sig = signature(DOC_SECRET_KEY, kt, kt, "GET", path, params, headers)
    assert sig.startswith("01681b8c9d798a678e43b685a9f1bba0f6c0"), sig
    # verify() round trip on the download example, as received on the wire.
    auth = sign("AKIDexample", DOC_SECRET_KEY, "GET", path, params, headers, 1557989753,
                1557996953)
    wire = [("Date", "Thu, 16 May 2019 06:55:53 GMT"),
            ("Host", "examplebucket-1250000000.cos.ap-beijing.myqcloud.com"),
            ("Authorization", auth)]
    verify("GET", "/exampleobject(%E8%85%BE%E8%AE%AF%E4%BA%91)",
           "response-content-type=application%2Foctet-stream&response-cache-control=max-age%3D600",
           wire, {"AKIDexample": {"key": DOC_SECRET_KEY}}, now=1557990000)
    try:
        verify("GET", "/exampleobject", "response-content-type=application%2Foctet-stream&"
               "response-cache-control=max-age%3D600", wire,
               {"AKIDexample": {"key": DOC_SECRET_KEY}}, now=1557990000)
        raise AssertionError("a changed path verified")
    except SignError as e:
        assert e.code == "SignatureDoesNotMatch"
    print("qsign selftest ok")


def main(argv):
    if argv[:1] == ["selftest"]:
        selftest()
        return 0
    if argv[:1] == ["sign"]:
        import argparse
        ap = argparse.ArgumentParser(prog="qsign.py sign")
        ap.add_argument("--ak", required=True)
        ap.add_argument("--sk", required=True)
        ap.add_argument("--method", required=True)
        ap.add_argument("--path", required=True)
        ap.add_argument("--start", type=int, required=True)
        ap.add_argument("--end", type=int, required=True)
        ap.add_argument("--param", action="append", default=[])
        ap.add_argument("--header", action="append", default=[])
        a = ap.parse_args(argv[1:])
        split = lambda kv: tuple(kv.split("=", 1)) if "=" in kv else (kv, "")
        print(sign(a.ak, a.sk, a.method, a.path, [split(p) for p in a.param],
                   [split(h) for h in a.header], a.start, a.end))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
