"""Tencent Cloud Infinite OCR on COS emulator (its public API documentation): one bucket, reached at any Host, every request signed with q-sign (qsign.py).

Authentication (every request; checks in this order, all HTTP 403):
  * no Authorization header, a missing/unknown/repeated q-* field, q-sign-algorithm not sha1,
    malformed q-sign-time/q-key-time -> AccessDenied;
  * q-ak not in setting `credentials` -> InvalidAccessKeyId;
  * the credential has a "token" and the request lacks x-cos-security-token, or carries another
    value -> InvalidAccessKeyId (inferred: a temporary SecretId is unknown without its token);
  * q-sign-time ended before now -> AccessDenied "Request has expired" (the message COS SDKs
    report for an expired signature); q-sign-time starts after now + max_skew ->
    RequestTimeTooSkewed (a client clock running ahead);
  * `host` not signed, or any received x-cos-* / x-ci-* header not in q-header-list, or (with
    require_all_params_signed) any query parameter not in q-url-param-list -> AccessDenied;
  * a listed header/param absent from the request, a list not sorted/lowercase/unique, or a
    wrong q-signature -> SignatureDoesNotMatch.
  The signature is recomputed from the request as received: method, the path percent-decoded
  once (COS signs the decoded path, as in the official examples), query values decoded once
  (RFC 3986: '+' stays '+'), header values as received. A repeated query parameter -> 400
  InvalidArgument.

Objects:
  PUT /<key>     Content-Length required (411 MissingContentLength, e.g. for chunked bodies);
                 over max_object_size -> 400 EntityTooLarge; a Content-MD5 header must match
                 (400 BadDigest); 200 with ETag "<md5 hex>". PUT / -> 400 InvalidArgument.
  GET|HEAD /<key> (no ci-process)   the bytes, or 404 NoSuchKey.
  DELETE /<key>  204, whether or not the key exists (as COS does).
  Other methods -> 405 MethodNotAllowed.

OCR: GET /<key>?ci-process=OCR&... or GET /?ci-process=OCR&detect-url=...
  * ci-process must be exactly "OCR"; allowed params: ci-process, type, language-type, ispdf,
    pdf-pagenumber, isword, enable-word-polygon, detect-url (anything else, or a bad value ->
    400 InvalidArgument). Booleans are exactly "true"/"false"; pdf-pagenumber a positive
    decimal integer.
  * detect-url must decode (once) to an http(s) URL with a host; if the decoded value still
    starts with http%3A / https%3A it was encoded twice -> 400 InvalidArgument. With setting
    detect_url_must_be_encoded (default true) the raw value on the wire must be percent-encoded
    (no bare ':' or '/'), as the COS signing reference says it is. detect-url wins over an object key (doc).
    A URL in setting `unreachable_urls` -> 400 ResourceDownloadFailed. Text: setting url_text.
  * neither key nor detect-url -> 400 InvalidArgument; key absent -> 404 NoSuchKey; empty object
    -> 400 MissingContent; bytes that are no PNG/JPEG/GIF/BMP/TIFF/WEBP image and no PDF ->
    400 InvalidContent; a PDF unless ispdf=true with type general|fast -> 400 InvalidContent
    (inferred from "once enabled, it can ... support PDF"); pdf-pagenumber beyond the page
    count -> 400 InvalidArgument.
  * Text per ocrtext.py; for a PDF, pages are separated by "\\f" and PdfPageSize is their count.
  * Response (200, application/xml, no XML declaration, like the document's example): one
    <TextDetections> per non-empty line: DetectedText, Confidence, 4 x Polygon{X,Y} (clockwise
    from top-left), ItemPolygon{X,Y,Width,Height}, then Words (isword=true and type general or
    accurate; per CJK character or space-separated Latin word: Character, Confidence,
    WordCoordPoint{4 x WordCoordinate{X,Y}}), then WordPolygon (type handwriting and
    enable-word-polygon=true; one per word: LeftTop/RightTop/RightBottom/LeftBottom{X,Y}).
    Then Language (language-type, "auto" -> "mix"; "zh" when absent), Angel (setting `angle`),
    PdfPageSize, RequestId. Setting xml_order "example" emits every element's children in
    alphabetical order, as the document's sample response does.

Errors: application/xml `<?xml ...?><Error><Code/><Message/><Resource/><RequestId/><TraceId/>
</Error>`, header x-cos-request-id (also on success).

Settings: credentials ({secret_id: {"key": k, "token"?: t}}), max_skew, max_object_size,
require_all_params_signed, detect_url_must_be_encoded, unreachable_urls, url_text, default_text,
angle, xml_order, objects_b64 ({key: base64} stored at once).
State: {"objects": {key: {size, etag}}, "ocr_requests": n}.
"""
import base64
import hashlib
import re
import threading
import time
import urllib.parse

import emu
import ocrtext
import qsign

DEFAULTS = {
    "credentials": {"AKIDtestSecretId": {"key": "testSecretKey"}},
    "max_skew": 900,
    "max_object_size": 50 * 1024 * 1024,
    "require_all_params_signed": True,
    "detect_url_must_be_encoded": True,
    "unreachable_urls": [],
    "url_text": ocrtext.DEFAULT_TEXT,
    "default_text": ocrtext.DEFAULT_TEXT,
    "angle": 0,
    "xml_order": "schema",
}

OCR_PARAMS = {"ci-process", "type", "language-type", "ispdf", "pdf-pagenumber", "isword",
              "enable-word-polygon", "detect-url"}
TYPES = {"general", "accurate", "efficient", "fast", "handwriting"}
LANGUAGE_TYPES = {"zh", "zh_rare", "auto", "mix", "jap", "kor", "spa", "fre", "ger", "por", "vie",
                  "may", "rus", "ita", "hol", "swe", "fin", "dan", "nor", "hun", "tha", "hi",
                  "ara"}
BOOLEANS = {"true", "false"}
IMAGE_FORMATS = {"png", "jpeg", "gif", "bmp", "tiff", "webp"}
PAGE_RE = re.compile(r"^[1-9][0-9]{0,8}$")

_counter = [0]
_counter_lock = threading.Lock()


def request_id():
    with _counter_lock:
        _counter[0] += 1
        n = _counter[0]
    return base64.b64encode(("%08x_emu_%06x" % (int(time.time()), n)).encode()).decode()


class CosError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class X:
    """A tiny XML element: tag, text or children. Serialised without attributes."""

    def __init__(self, tag, text=None, children=None):
        self.tag, self.text, self.children = tag, text, children or []

    def render(self, out, alphabetical):
        if self.text is not None:
            out.append("<%s>%s</%s>" % (self.tag, ocrtext.xml_escape(str(self.text)), self.tag))
            return
        kids = self.children
        if alphabetical:
            kids = sorted(kids, key=lambda k: k.tag)   # stable: repeated tags keep their order
        out.append("<%s>" % self.tag)
        for k in kids:
            k.render(out, alphabetical)
        out.append("</%s>" % self.tag)


def point(tag, x, y):
    return X(tag, children=[X("X", x), X("Y", y)])


def corners(x, y, w, h):
    """Clockwise from the top-left."""
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


class Tencent(emu.Emulator):
    name = "tencent"

    def __init__(self):
        super().__init__()
        self.route("*", lambda path: True, self.handle)

    def reset_state(self):
        self.objects = {}
        self.ocr_requests = 0

    def opt(self, key):
        return self.settings.get(key, DEFAULTS[key])

    def config(self, settings):
        settings = dict(settings)
        preload = settings.pop("objects_b64", None)
        super().config(settings)
        if preload:
            with self.lock:
                for k, v in preload.items():
                    self.store(k, base64.b64decode(v))

    def state_snapshot(self):
        with self.lock:
            return {"objects": {k: {"size": len(o["data"]), "etag": o["etag"]}
                                for k, o in self.objects.items()},
                    "ocr_requests": self.ocr_requests}

    def store(self, key, data):
        etag = '"%s"' % hashlib.md5(data).hexdigest()
        self.objects[key] = {"data": data, "etag": etag}
        return etag

    # -- responses ------------------------------------------------------------------------
    @staticmethod
    def error(req, status, code, message):
        rid = request_id()
        resource = req.headers.get("host", "") + req.raw_path
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
                "  <Code>%s</Code>\n  <Message>%s</Message>\n  <Resource>%s</Resource>\n"
                "  <RequestId>%s</RequestId>\n  <TraceId>%s</TraceId>\n</Error>\n"
                % (code, ocrtext.xml_escape(message), ocrtext.xml_escape(resource), rid,
                   base64.b64encode(hashlib.sha1(rid.encode()).digest()).decode()))
        return emu.Response(status, body, {"x-cos-request-id": rid},
                            "application/xml")

    def not_found(self, req):
        return self.error(req, 404, "NoSuchKey", "The specified key does not exist.")

    # -- dispatch -------------------------------------------------------------------------
    def handle(self, req):
        try:
            qsign.verify(req.method, req.raw_path, req.raw_query, req.header_list,
                         self.opt("credentials"), time.time(), self.opt("max_skew"),
                         self.opt("require_all_params_signed"))
            params = self.query(req)
            key = self.object_key(req)
            if req.method in ("GET", "HEAD") and "ci-process" in params:
                return self.ocr(req, key, params)
            if req.method == "PUT":
                return self.put(req, key)
            if req.method in ("GET", "HEAD"):
                return self.get(req, key)
            if req.method == "DELETE":
                if key == "":
                    raise CosError(400, "InvalidArgument", "DELETE needs an object key.")
                with self.lock:
                    self.objects.pop(key, None)
                return emu.Response(204, b"", {"x-cos-request-id": request_id()})
            raise CosError(405, "MethodNotAllowed", "The specified method is not allowed.")
        except qsign.SignError as e:
            return self.error(req, e.status, e.code, e.message)
        except CosError as e:
            return self.error(req, e.status, e.code, e.message)

    @staticmethod
    def query(req):
        out = {}
        for k, v in qsign.parse_query(req.raw_query):
            try:
                out[k.decode("utf-8")] = v.decode("utf-8")
            except UnicodeDecodeError:
                raise CosError(400, "InvalidArgument", "Query parameters must be UTF-8.")
        return out

    @staticmethod
    def object_key(req):
        raw = urllib.parse.unquote_to_bytes(req.raw_path.encode("latin-1"))
        try:
            return raw.decode("utf-8").lstrip("/")
        except UnicodeDecodeError:
            raise CosError(400, "InvalidURI", "The object key must be UTF-8.")

    # -- objects --------------------------------------------------------------------------
    def put(self, req, key):
        if key == "":
            raise CosError(400, "InvalidArgument", "PUT needs an object key.")
        if "content-length" not in req.headers:
            raise CosError(411, "MissingContentLength", "You must provide the Content-Length "
                           "HTTP header.")
        data = req.body or b""
        if len(data) > self.opt("max_object_size"):
            raise CosError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum "
                           "allowed object size.")
        md5 = req.headers.get("content-md5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(data).digest()).decode():
            raise CosError(400, "BadDigest", "The Content-MD5 you specified did not match what "
                           "we received.")
        with self.lock:
            etag = self.store(key, data)
        return emu.Response(200, b"", {"ETag": etag, "x-cos-request-id": request_id()})

    def get(self, req, key):
        if key == "":
            raise CosError(400, "InvalidArgument", "Bucket listing is not emulated.")
        with self.lock:
            obj = self.objects.get(key)
        if obj is None:
            raise CosError(404, "NoSuchKey", "The specified key does not exist.")
        return emu.Response(200, obj["data"], {"ETag": obj["etag"],
                                               "x-cos-request-id": request_id()},
                            "application/octet-stream")

    # -- OCR ------------------------------------------------------------------------------
    def ocr(self, req, key, params):
        opts = self.ocr_options(req, params)
        with self.lock:
            self.ocr_requests += 1
        if opts["detect_url"] is not None:
            if opts["detect_url"] in self.opt("unreachable_urls"):
                raise CosError(400, "ResourceDownloadFailed", "Failed to download the resource "
                               "at detect-url.")
            text, pages = self.opt("url_text"), 0
        else:
            if key == "":
                raise CosError(400, "InvalidArgument", "Give an object key or detect-url.")
            with self.lock:
                obj = self.objects.get(key)
            if obj is None:
                raise CosError(404, "NoSuchKey", "The specified key does not exist.")
            text, pages = self.recognise(obj["data"], opts)
        return self.ocr_response(text, pages, opts)

    def ocr_options(self, req, params):
        for k in params:
            if k not in OCR_PARAMS:
                raise CosError(400, "InvalidArgument", "Unknown parameter %s." % k)
        if params["ci-process"] != "OCR":
            raise CosError(400, "InvalidArgument", "ci-process must be OCR.")
        typ = params.get("type", "general")
        if typ not in TYPES:
            raise CosError(400, "InvalidArgument", "Invalid type %s." % typ)
        lang = params.get("language-type", "zh")
        if lang not in LANGUAGE_TYPES:
            raise CosError(400, "InvalidArgument", "Invalid language-type %s." % lang)
        opts = {"type": typ, "language": lang}
        for name in ("ispdf", "isword", "enable-word-polygon"):
            v = params.get(name, "false")
            if v not in BOOLEANS:
                raise CosError(400, "InvalidArgument", "%s must be true or false." % name)
            opts[name] = v == "true"
        page = params.get("pdf-pagenumber", "1")
        if not PAGE_RE.match(page):
            raise CosError(400, "InvalidArgument", "pdf-pagenumber must be a positive integer.")
        opts["page"] = int(page)
        opts["detect_url"] = None
        if "detect-url" in params:
            opts["detect_url"] = self.check_detect_url(req, params["detect-url"])
        return opts

    def check_detect_url(self, req, url):
        if self.opt("detect_url_must_be_encoded"):
            raw = None
            for seg in req.raw_query.split("&"):
                k, _, v = seg.partition("=")
                if k == "detect-url":
                    raw = v
            if raw is not None and ("/" in raw or ":" in raw):
                raise CosError(400, "InvalidArgument", "detect-url must be percent-encoded.")
        low = url.lower()
        if low.startswith("http%3a") or low.startswith("https%3a"):
            raise CosError(400, "InvalidArgument", "detect-url is percent-encoded more than "
                           "once.")
        try:
            u = urllib.parse.urlsplit(url)
            u.port
        except ValueError:
            raise CosError(400, "InvalidArgument", "detect-url is not a valid URL.")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise CosError(400, "InvalidArgument", "detect-url must be an http(s) URL.")
        return url

    def recognise(self, data, opts):
        if not data:
            raise CosError(400, "MissingContent", "The object is empty.")
        kind = ocrtext.detect_format(data)
        text = ocrtext.text_of(data, self.opt("default_text"))
        if kind == "pdf":
            if not (opts["ispdf"] and opts["type"] in ("general", "fast")):
                raise CosError(400, "InvalidContent", "PDF input needs ispdf=true (type general "
                               "or fast).")
            pages = ocrtext.pages_of(text)
            if opts["page"] > len(pages):
                raise CosError(400, "InvalidArgument", "pdf-pagenumber %d is beyond the %d "
                               "pages of the file." % (opts["page"], len(pages)))
            return pages[opts["page"] - 1], len(pages)
        if kind not in IMAGE_FORMATS:
            raise CosError(400, "InvalidContent", "The file is not a supported image.")
        return text, 0

    def ocr_response(self, text, pages, opts):
        rid = request_id()
        words = opts["isword"] and opts["type"] in ("general", "accurate")
        polygons = opts["enable-word-polygon"] and opts["type"] == "handwriting"
        root = X("Response")
        for i, line in enumerate(ocrtext.lines_of(text)):
            x, y, w, h = ocrtext.line_box(i, line)
            det = X("TextDetections", children=[X("DetectedText", line),
                                                X("Confidence", ocrtext.confidence(line))])
            det.children += [point("Polygon", px, py) for px, py in corners(x, y, w, h)]
            det.children.append(X("ItemPolygon", children=[X("X", x), X("Y", y), X("Width", w),
                                                           X("Height", h)]))
            boxes = ocrtext.token_boxes(i, line)
            if words:
                for tok, tx, ty, tw, th in boxes:
                    det.children.append(X("Words", children=[
                        X("Confidence", ocrtext.confidence(tok)), X("Character", tok),
                        X("WordCoordPoint", children=[point("WordCoordinate", px, py)
                                                      for px, py in corners(tx, ty, tw, th)])]))
            if polygons:
                for tok, tx, ty, tw, th in boxes:
                    c = corners(tx, ty, tw, th)
                    det.children.append(X("WordPolygon", children=[
                        point("LeftTop", *c[0]), point("RightTop", *c[1]),
                        point("RightBottom", *c[2]), point("LeftBottom", *c[3])]))
            root.children.append(det)
        lang = opts["language"]
        root.children += [X("Language", "mix" if lang == "auto" else lang),
                          X("Angel", self.opt("angle")), X("PdfPageSize", pages),
                          X("RequestId", rid)]
        out = []
        root.render(out, self.opt("xml_order") == "example")
        return emu.Response(200, "".join(out), {"x-cos-request-id": rid},
                            "application/xml")


if __name__ == "__main__":
    emu.serve(Tencent())
