"""PicWish async document OCR emulator (its public API documentation).

Strict about the documented contract, so a provider that passes against it is right by
construction. Choices where the document is silent are marked (inferred):

API (JSON bodies `{status, message, data?}`):
  POST /api/tasks/document/ocr          create a task (multipart/form-data only)
  GET  /api/tasks/document/ocr/<id>     poll; each poll advances the task one script step
  GET  /results/<id>.<format>?expires=N the result file (a pre-signed URL: no X-API-KEY)

Order of checks on create: X-API-KEY (401) -> qps (429) -> multipart (400) -> file size (413)
-> fields (400). (inferred: a gateway authenticates and rate-limits before the app reads the
body). Every create with a valid key counts against qps, even one later refused with 400/413
(inferred, gateway-style); polls and result downloads never count.

Field rules on create (all 400 unless said otherwise):
  * only the fields image_url, image_file, language, password, format; each at most once;
  * values must be UTF-8; image_url must be a plain field, image_file a file part (filename=...);
  * exactly one of image_url / image_file non-empty ("the other must be empty": an empty other
    part is allowed);
  * image_url: http or https, a host, port absent/80/443, and only RFC 3986 characters with
    well-formed %XX escapes ("follow URL encoding standards");
  * language: comma-separated, case-sensitive names from LANGUAGES, no blanks or spaces around
    commas, at most 10; an empty value means the default (ChinesePRC,English,Digits);
  * password: at most 32 characters;
  * format: txt pdf docx xlsx pptx; absent means setting `default_format` (inferred, the
    document gives no default; the state records whether the client sent one);
  * image_file larger than `max_file_size` -> 413.

Tasks: a new task copies the current `script` (list of {state, progress}); poll n (1-based) shows
step n (the last step repeats). processed_at is set when the task first leaves state 0,
completed_at when it reaches state 1 or a negative state; until then they are "" (inferred).
A file with no accepted magic number (PNG JPEG GIF BMP PDF PK-zip OLE2) is an invalid image: its
final step becomes state -7. A URL listed in setting `url_fail` ({url: negative state}) fails
with that state instead (e.g. -3 download failed). The failure message is the state's meaning
from the document's table; `status` stays 200 (the HTTP request itself succeeded).
`data.file` (state 1 only) = `<result_base or base_url>/results/<id>.<format>?expires=<unix>`,
expires = completed_at + file_ttl.

Results: txt -> the recognised text as UTF-8; pdf -> bytes starting "%PDF-1.4"; docx/xlsx/pptx ->
bytes starting "PK\\x03\\x04". Past `expires`, or with an `expires` that is not the one issued
(tampered), or missing -> 403 OSS-style XML AccessDenied "Request has expired."; unknown
object -> 404 XML NoSuchKey.

error_style "http" (default): an error's HTTP status equals body.status; "body": every API error
is sent with HTTP 200 and the status only in the body (the document: "HTTP 200 ... not
necessarily" success).

Settings (POST /_emu/config): api_key (string, or a list of valid keys), qps, script, file_ttl,
max_file_size, error_style, default_text, url_text, url_fail, default_format, result_base.
State (GET /_emu/state): tasks; accepted, the arrival times (monotonic) of the creates the qps
check let through; qps_refused, how many it answered 429 (the fleet specs count both).
"""
import math
import re
import time
import urllib.parse
import uuid

import emu
import ocrtext

DEFAULTS = {
    "api_key": "test-picwish-key",
    "qps": 2,
    "script": [{"state": 0, "progress": 0}, {"state": 4, "progress": 50},
               {"state": 1, "progress": 100}],
    "file_ttl": 3600,
    "max_file_size": 200 * 1024 * 1024,
    "error_style": "http",
    "default_text": ocrtext.DEFAULT_TEXT,
    "url_text": ocrtext.DEFAULT_TEXT,
    "url_fail": {},
    "default_format": "txt",
    "result_base": None,
}

FIELDS = {"image_url", "image_file", "language", "password", "format"}
FORMATS = {"txt", "pdf", "docx", "xlsx", "pptx"}
ACCEPTED_MAGIC = {"png", "jpeg", "gif", "bmp", "pdf", "zip", "ole"}
MAX_LANGUAGES = 10
MAX_PASSWORD = 32
DEFAULT_LANGUAGE = "ChinesePRC,English,Digits"

# Recognition language names in the style of the document's examples (ABBYY-style identifiers,
# case-sensitive). The document names English, ChinesePRC, Digits; the rest are the usual
# companions of that naming scheme.
LANGUAGES = {
    "English", "ChinesePRC", "ChineseTaiwan", "Digits", "Japanese", "Korean", "French", "German",
    "Spanish", "Italian", "Portuguese", "PortugueseBrazilian", "Russian", "Dutch", "Swedish",
    "Danish", "Finnish", "Norwegian", "NorwegianBokmal", "NorwegianNynorsk", "Polish", "Czech",
    "Slovak", "Slovenian", "Hungarian", "Romanian", "Bulgarian", "Croatian", "Serbian",
    "Ukrainian", "Greek", "Turkish", "Arabic", "Hebrew", "Thai", "Vietnamese", "Indonesian",
    "Malay", "Latin", "Catalan", "Estonian", "Latvian", "Lithuanian", "Irish", "Icelandic",
    "Mathematical",
}

STATE_MESSAGES = {
    -17: "Processing failed because the prompt is invalid.",
    -16: "Processing failed because a third-party review detected prohibited content.",
    -15: "Processing failed due to insufficient resources.",
    -14: "Processing failed because the input image content does not meet the requirements.",
    -13: "Processing failed because the task was canceled due to an exception.",
    -11: "Processing failed because the result is empty.",
    -10: "Processing failed because internal review detected prohibited content.",
    -9: "Processing failed because the internal program failed during loop processing.",
    -8: "Processing timed out. The maximum processing time is 180 seconds.",
    -7: "Invalid image file (e.g. corrupted image or incorrect format).",
    -5: "The image_url image exceeds the size limit (30MB).",
    -3: "The server failed to download your file. Check that the source image URL is available.",
    -2: "Processing completed, but uploading the result to OSS failed.",
    -1: "Processing failed.",
}

TASK_PREFIX = "/api/tasks/document/ocr/"
CREATE_PATH = "/api/tasks/document/ocr"

# RFC 3986 characters allowed in a URI, plus '%' which must start a well-formed escape.
URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")

PDF_BYTES = b"%PDF-1.4\n% lua-ocr emulator result\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
ZIP_BYTES = b"PK\x03\x04" + b"\x14\x00\x00\x00\x00\x00lua-ocr emulator result"


class ApiError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class PicWish(emu.Emulator):
    name = "picwish"

    def __init__(self):
        super().__init__()
        self.route("POST", CREATE_PATH, self.create)
        self.route("GET", TASK_PREFIX, self.poll)
        self.route("GET", "/results/", self.result)
        self.route("HEAD", "/results/", self.result)

    # -- settings & state -----------------------------------------------------------------
    def reset_state(self):
        self.tasks = {}
        self.creates = {}   # api key -> [timestamps of creates within the last second]
        self.accepted = []  # arrival times (monotonic) of the creates the qps check let through
        self.qps_refused = 0

    def opt(self, key):
        return self.settings.get(key, DEFAULTS[key])

    def state_snapshot(self):
        with self.lock:
            return {"tasks": {tid: self.describe(t) for tid, t in self.tasks.items()},
                    "accepted": list(self.accepted), "qps_refused": self.qps_refused}

    @staticmethod
    def describe(t):
        d = {k: v for k, v in t.items() if k not in ("text", "steps")}
        d["steps"] = list(t["steps"])
        return d

    # -- responses ------------------------------------------------------------------------
    def error(self, status, message):
        http_status = status if self.opt("error_style") == "http" else 200
        return emu.Response.json({"status": status, "message": message}, http_status)

    def not_found(self, req):
        return self.error(404, "The requested URL does not exist.")

    def check_key(self, req):
        keys = self.opt("api_key")
        keys = keys if isinstance(keys, list) else [keys]
        key = req.headers.get("x-api-key")
        if key is None or key not in keys:
            raise ApiError(401, "Unauthorized API key.")
        return key

    def check_qps(self, key, now):
        limit = self.opt("qps")
        with self.lock:
            recent = [t for t in self.creates.get(key, []) if now - t < 1.0]
            if limit and len(recent) >= limit:
                self.creates[key] = recent
                self.qps_refused += 1
                raise ApiError(429, "Request frequency exceeds the QPS limit (%s)." % limit)
            recent.append(now)
            self.creates[key] = recent
            self.accepted.append(now)

    # -- create ---------------------------------------------------------------------------
    def create(self, req):
        try:
            key = self.check_key(req)
            self.check_qps(key, req.arrived_mono)
            fields = self.parse_fields(req)
            task = self.new_task(key, fields)
        except ApiError as e:
            return self.error(e.status, e.message)
        return emu.Response.json({"status": 200, "message": "success",
                                  "data": {"task_id": task["task_id"]}})

    def parse_fields(self, req):
        form = req.form()
        if form is None:
            raise ApiError(400, "Content-Type must be multipart/form-data.")
        for name, parts in form.items():
            if name not in FIELDS:
                raise ApiError(400, "Unknown parameter: %s." % name)
            if len(parts) != 1:
                raise ApiError(400, "Parameter %s given more than once." % name)
        f = {name: parts[0] for name, parts in form.items()}
        img = f.get("image_file")
        if img is not None and len(img.data) > self.opt("max_file_size"):
            raise ApiError(413, "The uploaded file exceeds the allowed size.")
        out = {}
        for name, part in f.items():
            if name == "image_file":
                if part.filename is None and part.data:
                    raise ApiError(400, "image_file must be a file part (with a filename).")
                continue
            if part.filename is not None:
                raise ApiError(400, "%s must be a text field, not a file." % name)
            try:
                out[name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "%s is not valid UTF-8." % name)
        url = out.get("image_url", "")
        data = img.data if img is not None else b""
        if url and data:
            raise ApiError(400, "Use either image_url or image_file, not both.")
        if not url and not data:
            raise ApiError(400, "image_url or image_file is required.")
        if url:
            self.check_url(url)
        out["language"] = self.check_language(out.get("language", ""))
        if len(out.get("password", "")) > MAX_PASSWORD:
            raise ApiError(400, "password is longer than %d characters." % MAX_PASSWORD)
        if "format" in out:
            if out["format"] not in FORMATS:
                raise ApiError(400, "format must be one of txt, pdf, docx, xlsx, pptx.")
            out["format_sent"] = True
        else:
            out["format"] = self.opt("default_format")
            out["format_sent"] = False
        if img is not None and data:
            out["file"] = {"filename": img.filename, "content_type": img.content_type,
                           "data": data}
        return out

    @staticmethod
    def check_url(url):
        if not URI_CHARS.match(url) or BAD_ESCAPE.search(url):
            raise ApiError(400, "image_url is not a properly encoded URL.")
        try:
            u = urllib.parse.urlsplit(url)
            port = u.port
        except ValueError:
            raise ApiError(400, "image_url has an invalid port.")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ApiError(400, "image_url must be an http or https URL.")
        if port is not None and port not in (80, 443):
            raise ApiError(400, "image_url must not use ports other than 80 or 443.")

    @staticmethod
    def check_language(value):
        if value == "":
            return DEFAULT_LANGUAGE
        names = value.split(",")
        if len(names) > MAX_LANGUAGES:
            raise ApiError(400, "At most %d languages are allowed." % MAX_LANGUAGES)
        for n in names:
            if n not in LANGUAGES:
                raise ApiError(400, "Unsupported language: %r." % n)
        return value

    def new_task(self, key, fields):
        steps = [{"state": int(s["state"]), "progress": int(s.get("progress", 0))}
                 for s in self.opt("script")]
        if not steps:
            steps = [dict(s) for s in DEFAULTS["script"]]
        f = fields.get("file")
        if f is not None:
            kind = ocrtext.detect_format(f["data"])
            text = ocrtext.text_of(f["data"], self.opt("default_text"))
            fail = None if kind in ACCEPTED_MAGIC else -7
            source = "file"
        else:
            kind = None
            text = self.opt("url_text")
            fail = self.opt("url_fail").get(fields["image_url"])
            source = "url"
        if fail is not None and steps[-1]["state"] >= 0:
            steps[-1] = {"state": int(fail), "progress": 0}
        now = int(time.time())
        task = {
            "task_id": str(uuid.uuid4()),
            "api_key": key,
            "source": source,
            "image_url": fields.get("image_url") or None,
            "filename": f and f["filename"],
            "content_type": f and f["content_type"],
            "size": len(f["data"]) if f else 0,
            "detected": kind,
            "language": fields["language"],
            "password": fields.get("password"),
            "format": fields["format"],
            "format_sent": fields["format_sent"],
            "steps": steps,
            "step": -1,
            "polls": 0,
            "created_at": now,
            "processed_at": None,
            "completed_at": None,
            "expires": None,
            "text": text,
        }
        with self.lock:
            self.tasks[task["task_id"]] = task
        return task

    # -- poll -----------------------------------------------------------------------------
    def poll(self, req):
        try:
            key = self.check_key(req)
        except ApiError as e:
            return self.error(e.status, e.message)
        tid = req.path[len(TASK_PREFIX):]
        with self.lock:
            t = self.tasks.get(tid)
            if t is None or t["api_key"] != key:
                return self.error(404, "Task not found. Check that the task_id is correct.")
            t["polls"] += 1
            t["step"] = min(t["step"] + 1, len(t["steps"]) - 1)
            step = t["steps"][t["step"]]
            now_f = time.time()
            now = int(now_f)
            state = step["state"]
            if state != 0 and t["processed_at"] is None:
                t["processed_at"] = now
            if (state == 1 or state < 0) and t["completed_at"] is None:
                t["completed_at"] = now
                if state == 1:
                    # Rounded up so a URL is never issued already expired.
                    t["expires"] = int(math.ceil(now_f + float(self.opt("file_ttl"))))
            data = {
                "task_id": tid,
                "created_at": str(t["created_at"]),
                "processed_at": str(t["processed_at"]) if t["processed_at"] is not None else "",
                "completed_at": str(t["completed_at"]) if t["completed_at"] is not None else "",
                "progress": step["progress"],
                "state": state,
            }
            if state == 1:
                base = self.opt("result_base") or self.base_url
                data["file"] = "%s/results/%s.%s?expires=%d" % (base, tid, t["format"],
                                                                t["expires"])
            message = STATE_MESSAGES.get(state, "Processing failed.") if state < 0 else "success"
        return emu.Response.json({"status": 200, "message": message, "data": data})

    # -- results --------------------------------------------------------------------------
    @staticmethod
    def oss_error(status, code, message):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>%s</Code>\n'
                '  <Message>%s</Message>\n  <RequestId>%s</RequestId>\n'
                '  <HostId>results.emulator</HostId>\n</Error>\n'
                % (code, ocrtext.xml_escape(message), uuid.uuid4().hex.upper()[:24]))
        return emu.Response(status, body, {"x-oss-request-id": uuid.uuid4().hex[:24]},
                            "application/xml")

    def result(self, req):
        name = req.path[len("/results/"):]
        tid, _, fmt = name.rpartition(".")
        with self.lock:
            t = self.tasks.get(tid)
            if t is None or t["format"] != fmt or t["expires"] is None:
                return self.oss_error(404, "NoSuchKey", "The specified key does not exist.")
            expires = req.query.get("expires")
            if expires != str(t["expires"]) or time.time() > t["expires"]:
                return self.oss_error(403, "AccessDenied", "Request has expired.")
            text = t["text"]
        if fmt == "txt":
            return emu.Response(200, text.encode("utf-8"), None, "text/plain; charset=utf-8")
        if fmt == "pdf":
            return emu.Response(200, PDF_BYTES, None, "application/pdf")
        return emu.Response(200, ZIP_BYTES, None, "application/octet-stream")


if __name__ == "__main__":
    emu.serve(PicWish())
