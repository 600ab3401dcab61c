"""OCR assistant ("oldfish") Code.ashx emulator (its public API documentation).

Strict about the documented contract, so a provider that passes against it is right by
construction. Choices where the document is silent are marked (inferred).

API (every request carries `app=api&token=...` in the query string):
  POST /Code.ashx?op=code&app=api&token=T[&type=N][&left=1...]   recognise (billed)
  POST /Code.ashx?op=idcode&app=api&token=T     body field `id`    poll a pending id
  POST /Code.ashx?op=imgUpload&app=api&token=T  multipart file     image bed -> plain-text URL
  GET  /Code.aspx?op=count&app=api&token=T                         quota (note: .aspx)
  GET  /files/<name>      result files listed in result.files (expire after `file_ttl`)
  GET  /uploads/<name>    images stored by imgUpload
  GET  /view/<id>         the formula preview page (type 3, viewUrl)

Paths are matched with the documented spelling only (`/Code.ashx`, `/Code.aspx`), although IIS
itself is case-insensitive (inferred strictness: holds clients to the document). An op sent to the
other handler (count on .ashx, code on .aspx) is an unknown op -> HTTP 400 text (inferred).
Code.ashx ops are POST only and count is GET only; any other method -> HTTP 405 (inferred).

Query strictness (inferred, the document lists the parameters): each parameter at most once
(else 400); op=code takes only op, app, token, type and the layout flags; the other ops take only
op, app, token (anything else -> 400, which catches typos such as `autoDirection`).

Authentication (`app` must be `api` and `token` one of the valid tokens):
  * count: a bad or missing token answers all zeros (doc);
  * code: the answer has the shape of the quota answer -- processName "Tips", no state, the text
    in result.autoText/spiltText -- plus `message` (inferred: the doc names no other error shape;
    the vendor's own client shows autoText). A client tells it apart from the quota answer with
    op=count, whose all-zero answer means an invalid token (doc);
  * idcode and imgUpload: plain text `no` (inferred: their only documented failure answer).

op=code, order of checks (inferred: a gateway authenticates first):
  token -> query (400) -> credits (quota answer, doc shape: processName "Tips", no state, message
  in result.autoText) -> type (not 0..3 -> state 7 "type not supported", doc) -> flags (not
  exactly "0" or "1" -> 400, the document: "pass 1 to turn on, 0 not on") -> body (400) ->
  busy (state 6) -> image format (no accepted magic number -> state 7) -> task.
  Body: multipart/form-data or application/x-www-form-urlencoded (ASP.NET's Request.Form reads
  both), or text/plain whose body is the base64 code ("plain text", doc). Exactly one image
  source: one file part (a part with a filename, under any name: ASP.NET's Request.Files; the
  emulator records the name), or the field `url` (http/https with a host), or the field `code`
  (strict base64: standard alphabet, padding, no whitespace, not empty; a `data:` prefix is
  refused, the doc says "no need to include a header"). Unknown fields or a field given twice
  -> 400. A file part without a filename is not a file (400).
  Credits (setting `credits`, default 100) are consumed by every request that reaches the engine:
  the first script step is 0, 2, 3 or 4. State 6 (busy) and 7 (unsupported) answers are free
  (inferred).

Tasks: a new task copies `script` (a list of states, or {state, message} objects; default [2]).
The op=code answer shows step 1; each idcode poll shows the next step (the last repeats). A URL
in setting `url_fail` recognises as state 3. idcode answers a JSON array holding the one task
(doc shape), or `no` for an unknown id, another token's id, or an id older than `result_ttl`
seconds (default 600, from creation; inferred).
Answers: `id` (UUID), `ocrType`, `processId`/`processName` (omitted while pending: "empty when not
assigned to a node", doc), `state`, `message` (states 3, 4, 6, 7 only), `result` (state 2 only).
null fields are omitted (doc).

Result (state 2), from the shared fake OCR (ocrtext.py: text after `TEXT:`, pages split by \\f):
  autoText = the text lines joined by \\n (empty lines dropped, pages joined by \\n);
  spiltText = each line indented by \\t, joined by \\n; in table mode (type 2) a JSON string of
    columns: each line is a row, cells split on \\t, column-major [[col1 cells], [col2 cells]]
    (inferred: the doc says only "JSON columns");
  verticalText = a JSON *string* of [{words, pageIndex, location{left, top, width, height}}],
    floats, geometry from ocrtext.line_box (line index restarts on every page);
  resultType 0 (text), 2 (table), 1 for type 3 (formula) with `viewUrl`;
  lang "chi_sim" when the text has a wide (CJK) character, else "eng";
  files: one DownLoadInfo {url, param "", fileType, desc} per entry of setting `files` (a
    fileType int, or {fileType, name, desc}; `name` may be hostile, it is percent-encoded into the
    URL). Served at /files/<encoded name> until file_ttl (default 3600) after completion, then
    404 (inferred).
Layout flags are recorded on the task; `half=1` really converts full-width forms (U+FF01..FF5E,
U+3000) to half-width so a spec can see it applied.

imgUpload: one file part (any name) with an accepted magic number -> text/plain URL
`<base_url>/uploads/<hex>.<ext>`; a URL to this server's own upload recognises as that image's
text. No file, a bad image, bad token or setting `upload_fail` -> text/plain `no`.

count: {"Account": "api", "TodayCount": used, "LimitCount": remaining credits}. Setting
`count_comments` = true answers in the document's literal style with // comments (inferred
as a possibility: the doc's example shows them).

Settings (POST /_emu/config): token (string or list), credits, script, busy (the next N op=code
answers are state 6), result_ttl, file_ttl, files, default_text, url_text, url_fail,
upload_fail, count_comments.
"""
import base64
import binascii
import json
import re
import time
import unicodedata
import urllib.parse
import uuid

import emu
import ocrtext

DEFAULTS = {
    "token": "test-oldfish-token",
    "credits": 100,
    "script": [2],
    "busy": 0,
    "result_ttl": 600,
    "file_ttl": 3600,
    "files": [],
    "default_text": ocrtext.DEFAULT_TEXT,
    "url_text": ocrtext.DEFAULT_TEXT,
    "url_fail": [],
    "upload_fail": False,
    "count_comments": False,
}

FLAGS = ("left", "top", "autodirection", "half", "space", "symbol", "duplicate")
CODE_PARAMS = {"op", "app", "token", "type"} | set(FLAGS)
BASE_PARAMS = {"op", "app", "token"}
ACCEPTED_MAGIC = {"png", "jpeg", "gif", "bmp", "pdf", "tiff", "webp"}
EXT = {"png": "png", "jpeg": "jpg", "gif": "gif", "bmp": "bmp", "pdf": "pdf", "tiff": "tif",
       "webp": "webp"}
FILE_TYPES = {1: ("pdf", "PDF document"), 2: ("docx", "Word document"),
              3: ("pptx", "PowerPoint document"), 4: ("xlsx", "Excel workbook"),
              5: ("txt", "Plain text"), 6: ("md", "Markdown")}
STATE_MESSAGES = {
    3: "Processing failed, please try again.",
    4: "Processing timed out.",
    6: "Too many concurrent requests, please reduce the frequency.",
    7: "The recognition type or file format is not supported.",
}
QUOTA_TIP = "Today's API quota has been exhausted, please recharge and continue to use it!"
TOKEN_TIP = "Invalid token: get your own token in the Personal center."
B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")

PDF_BYTES = b"%PDF-1.4\n% lua-ocr oldfish emulator\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
ZIP_BYTES = b"PK\x03\x04" + b"\x14\x00\x00\x00\x00\x00lua-ocr oldfish emulator"


class Reject(Exception):
    """A request the vendor refuses; `response` is what it answers."""

    def __init__(self, response):
        super().__init__("rejected")
        self.response = response


def text_response(s, status=200):
    return emu.Response.text(s, status)


def bad(message):
    return Reject(text_response("bad request: " + message, 400))


def to_half(s):
    out = []
    for c in s:
        o = ord(c)
        if 0xFF01 <= o <= 0xFF5E:
            out.append(chr(o - 0xFEE0))
        elif o == 0x3000:
            out.append(" ")
        else:
            out.append(c)
    return "".join(out)


def has_wide(s):
    return any(unicodedata.east_asian_width(c) in ("W", "F") for c in s)


class OldFish(emu.Emulator):
    name = "oldfish"

    def __init__(self):
        super().__init__()
        self.route("*", "/Code.ashx", self.ashx)
        self.route("*", "/Code.aspx", self.aspx)
        self.route("GET", "/files/", self.serve_file)
        self.route("GET", "/uploads/", self.serve_upload)
        self.route("GET", "/view/", self.serve_view)

    # -- settings & state ---------------------------------------------------------------------
    def reset_state(self):
        self.tasks = {}
        self.files = {}
        self.uploads = {}
        self.used = {}      # token -> op=code requests charged
        self.busy_left = None

    def opt(self, key):
        return self.settings.get(key, DEFAULTS[key])

    def config(self, settings):
        super().config(settings)
        if "busy" in settings:
            self.busy_left = int(settings["busy"])

    def state_snapshot(self):
        with self.lock:
            return {"tasks": {tid: {k: v for k, v in t.items() if k != "text"}
                              for tid, t in self.tasks.items()},
                    "used": dict(self.used), "uploads": sorted(self.uploads),
                    "files": sorted(self.files)}

    def tokens(self):
        t = self.opt("token")
        return t if isinstance(t, list) else [t]

    def authorised(self, req):
        return req.query.get("app") == "api" and req.query.get("token") in self.tokens()

    def not_found(self, req):
        return emu.Response(404, "<html><body><h1>404 - File or directory not found.</h1>"
                                 "</body></html>", None, "text/html; charset=utf-8")

    @staticmethod
    def check_query(req, allowed):
        names = [k for k, _ in req.query_list]
        for k in names:
            if names.count(k) > 1:
                raise bad("query parameter %s given more than once" % k)
            if k not in allowed:
                raise bad("unknown query parameter %s" % k)

    # -- routing ------------------------------------------------------------------------------
    def ashx(self, req):
        op = req.query.get("op")
        handlers = {"code": self.code, "idcode": self.idcode, "imgUpload": self.img_upload}
        try:
            if op not in handlers:
                raise bad("unknown op %r for Code.ashx" % op)
            if req.method != "POST":
                return text_response("method not allowed", 405)
            return handlers[op](req)
        except Reject as e:
            return e.response

    def aspx(self, req):
        try:
            if req.query.get("op") != "count":
                raise bad("unknown op %r for Code.aspx" % req.query.get("op"))
            if req.method != "GET":
                return text_response("method not allowed", 405)
            self.check_query(req, BASE_PARAMS)
            return self.count(req)
        except Reject as e:
            return e.response

    # -- body ---------------------------------------------------------------------------------
    def fields(self, req):
        """{name: [emu.Part]} from a multipart or urlencoded body; text/plain -> {'code': ...}."""
        ctype = req.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/form-data"):
            form = req.form()
            if form is None:
                raise bad("malformed multipart body")
            return form
        if ctype.startswith("application/x-www-form-urlencoded"):
            try:
                pairs = urllib.parse.parse_qsl(req.body.decode("utf-8"), keep_blank_values=True,
                                               strict_parsing=bool(req.body))
            except (UnicodeDecodeError, ValueError):
                raise bad("malformed form body")
            form = {}
            for k, v in pairs:
                form.setdefault(k, []).append(emu.Part(k, None, None, v.encode("utf-8")))
            return form
        if ctype.startswith("text/plain"):
            return {"code": [emu.Part("code", None, None, req.body)]} if req.body else {}
        if not req.body:
            return {}
        raise bad("unsupported Content-Type %r" % ctype)

    @staticmethod
    def field_text(part):
        if part.filename is not None:
            raise bad("%s must be a form field, not a file" % part.name)
        try:
            return part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise bad("%s is not UTF-8" % part.name)

    def image_source(self, form):
        """Returns ('file'|'url'|'code', bytes or url, file part name, filename, content type)."""
        files = [p for parts in form.values() for p in parts if p.filename is not None]
        for name, parts in form.items():
            if len(parts) > 1:
                raise bad("%s given more than once" % name)
            p = parts[0]
            if p.filename is None and name not in ("url", "code"):
                raise bad("unknown field %s" % name)
        given = [s for s in ("url", "code") if s in form] + (["file"] if files else [])
        if len(given) != 1:
            raise bad("exactly one image source (file, url or code) is required, got %s"
                      % (", ".join(given) or "none"))
        if files:
            p = files[0]
            if not p.data:
                raise bad("the uploaded file is empty")
            return "file", p.data, p.name, p.filename, p.content_type
        if "url" in form:
            url = self.field_text(form["url"][0])
            u = urllib.parse.urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise bad("url must be an http or https URL")
            return "url", url, None, None, None
        code = self.field_text(form["code"][0])
        if code[:5].lower() == "data:":
            raise bad("code must be bare base64, without a data: header")
        if not code or len(code) % 4 != 0 or not B64.match(code):
            raise bad("code is not valid base64")
        try:
            data = base64.b64decode(code, validate=True)
        except (binascii.Error, ValueError):
            raise bad("code is not valid base64")
        if not data:
            raise bad("code decodes to nothing")
        return "code", data, None, None, None

    # -- op=code ------------------------------------------------------------------------------
    def tips(self, ocr_type, text, message=None):
        body = {"ocrType": ocr_type, "processName": "Tips",
                "result": {"spiltText": text, "autoText": text}, "id": 1}
        if message:
            body["message"] = message
        return emu.Response.json(body)

    def state_answer(self, ocr_type, state, tid=None, message=None):
        body = {"ocrType": ocr_type, "processId": 3, "processName": "OCR-Node-01", "state": state,
                "message": message or STATE_MESSAGES.get(state, "")}
        if tid:
            body["id"] = tid
        return emu.Response.json(body)

    def code(self, req):
        raw_type = req.query.get("type", "0")
        ocr_type = int(raw_type) if raw_type in ("0", "1", "2", "3") else 0
        if not self.authorised(req):
            return self.tips(ocr_type, TOKEN_TIP, "token invalid")
        self.check_query(req, CODE_PARAMS)
        token = req.query["token"]
        with self.lock:
            credits = self.opt("credits")
            if credits is not None and self.used.get(token, 0) >= credits:
                return self.tips(ocr_type, QUOTA_TIP)
        if raw_type not in ("0", "1", "2", "3"):
            return self.state_answer(ocr_type, 7, message="type %r is not supported" % raw_type)
        flags = {}
        for f in FLAGS:
            if f in req.query:
                if req.query[f] not in ("0", "1"):
                    raise bad("%s must be 0 or 1, got %r" % (f, req.query[f]))
                flags[f] = int(req.query[f])
        source, value, part_name, filename, ctype = self.image_source(self.fields(req))
        with self.lock:
            if self.busy_left:
                self.busy_left -= 1
                return self.state_answer(ocr_type, 6)
        steps = [s if isinstance(s, dict) else {"state": int(s)} for s in self.opt("script")]
        steps = steps or [{"state": 2}]
        if source == "url":
            text, kind = self.url_text(value), "url"
            if value in self.opt("url_fail"):
                steps[-1] = {"state": 3}
        else:
            kind = ocrtext.detect_format(value)
            text = ocrtext.text_of(value, self.opt("default_text"))
        if kind not in ACCEPTED_MAGIC and kind != "url":
            return self.state_answer(ocr_type, 7, message="the file format is not supported")
        first = int(steps[0]["state"])
        if first in (6, 7):
            return self.state_answer(ocr_type, first, message=steps[0].get("message"))
        now = time.time()
        task = {
            "id": str(uuid.uuid4()), "token": token, "type": ocr_type, "flags": flags,
            "source": source, "url": value if source == "url" else None,
            "part_name": part_name, "filename": filename, "content_type": ctype,
            "size": len(value) if source != "url" else 0, "steps": steps, "step": 0, "polls": 0,
            "created": now, "completed": None, "text": text,
        }
        with self.lock:
            self.used[token] = self.used.get(token, 0) + 1
            self.tasks[task["id"]] = task
            return emu.Response.json(self.answer(task))

    def url_text(self, url):
        prefix = (self.base_url or "") + "/uploads/"
        if url.startswith(prefix):
            up = self.uploads.get(url[len(prefix):])
            if up is not None:
                return ocrtext.text_of(up["data"], self.opt("default_text"))
        return self.opt("url_text")

    def answer(self, task):
        """The JSON answer for the task's current step (lock held)."""
        step = task["steps"][task["step"]]
        state = int(step["state"])
        body = {"ocrType": task["type"], "id": task["id"], "state": state}
        if state != 0:
            body["processId"] = 3
            body["processName"] = "OCR-Node-01"
        if state in STATE_MESSAGES:
            body["message"] = step.get("message") or STATE_MESSAGES[state]
        if state == 2:
            if task["completed"] is None:
                task["completed"] = time.time()
            body["result"] = self.result(task)
        return body

    def result(self, task):
        text = task["text"]
        if task["flags"].get("half"):
            text = to_half(text)
        lines, cells = [], []
        for page_index, page in enumerate(ocrtext.pages_of(text)):
            for i, line in enumerate(ocrtext.lines_of(page)):
                x, y, w, h = ocrtext.line_box(i, line)
                lines.append(line)
                cells.append({"words": line, "pageIndex": page_index,
                              "location": {"left": float(x), "top": float(y), "width": float(w),
                                           "height": float(h)}})
        auto = "\n".join(lines)
        r = {"autoText": auto, "verticalText": json.dumps(cells, ensure_ascii=False),
             "lang": "chi_sim" if has_wide(auto) else "eng", "resultType": 0}
        if task["type"] == 2:
            rows = [ln.split("\t") for ln in lines]
            width = max([len(r_) for r_ in rows] or [0])
            columns = [[row[c] if c < len(row) else "" for row in rows] for c in range(width)]
            r["spiltText"] = json.dumps(columns, ensure_ascii=False)
            r["resultType"] = 2
        else:
            r["spiltText"] = "\n".join("\t" + ln for ln in lines)
        if task["type"] == 3:
            r["resultType"] = 1
            r["viewUrl"] = "%s/view/%s" % (self.base_url, task["id"])
        files = self.result_files(task)
        if files:
            r["files"] = files
        return r

    def result_files(self, task):
        if "files" in task:
            return task["files"]
        out = []
        for n, spec in enumerate(self.opt("files")):
            spec = spec if isinstance(spec, dict) else {"fileType": spec}
            ftype = int(spec["fileType"])
            ext, desc = FILE_TYPES.get(ftype, ("bin", "file"))
            name = spec.get("name") or "%s-%d.%s" % (task["id"], n + 1, ext)
            quoted = urllib.parse.quote(name, safe="")
            self.files[quoted] = {"ext": ext, "text": task["text"],
                                  "expires": task["completed"] + float(self.opt("file_ttl"))}
            out.append({"url": "%s/files/%s" % (self.base_url, quoted), "param": "",
                        "fileType": ftype, "desc": spec.get("desc", desc)})
        task["files"] = out
        return out

    # -- op=idcode ----------------------------------------------------------------------------
    def idcode(self, req):
        if not self.authorised(req):
            return text_response("no")
        self.check_query(req, BASE_PARAMS)
        form = self.fields(req)
        for name, parts in form.items():
            if name != "id":
                raise bad("unknown field %s" % name)
            if len(parts) > 1:
                raise bad("id given more than once")
        if "id" not in form:
            return text_response("no")
        tid = self.field_text(form["id"][0])
        with self.lock:
            t = self.tasks.get(tid)
            if (t is None or t["token"] != req.query["token"]
                    or time.time() - t["created"] > float(self.opt("result_ttl"))):
                return text_response("no")
            t["polls"] += 1
            t["step"] = min(t["step"] + 1, len(t["steps"]) - 1)
            return emu.Response.json([self.answer(t)])

    # -- op=imgUpload -------------------------------------------------------------------------
    def img_upload(self, req):
        if not self.authorised(req) or self.opt("upload_fail"):
            return text_response("no")
        self.check_query(req, BASE_PARAMS)
        form = req.form()
        if form is None:
            return text_response("no")
        files = [p for parts in form.values() for p in parts if p.filename is not None]
        if len(files) != 1 or not files[0].data:
            return text_response("no")
        kind = ocrtext.detect_format(files[0].data)
        if kind not in ACCEPTED_MAGIC:
            return text_response("no")
        name = "%s.%s" % (uuid.uuid4().hex, EXT[kind])
        with self.lock:
            self.uploads[name] = {"data": files[0].data, "filename": files[0].filename,
                                  "part_name": files[0].name,
                                  "content_type": files[0].content_type}
        return text_response("%s/uploads/%s" % (self.base_url, name))

    # -- op=count -----------------------------------------------------------------------------
    def count(self, req):
        if not self.authorised(req):
            today, limit = 0, 0
        else:
            with self.lock:
                today = self.used.get(req.query["token"], 0)
                credits = self.opt("credits")
                limit = max(0, credits - today) if credits is not None else 999999
        if self.opt("count_comments"):
            body = ('{\n  "Account": "api",\n  "TodayCount": %d, // Used today\n'
                    '  "LimitCount": %d       // The total number of current remains\n}'
                    % (today, limit))
            return emu.Response(200, body, None, "application/json; charset=utf-8")
        return emu.Response.json({"Account": "api", "TodayCount": today, "LimitCount": limit})

    # -- served files -------------------------------------------------------------------------
    def serve_file(self, req):
        name = req.raw_path[len("/files/"):]
        with self.lock:
            f = self.files.get(name)
            if f is None or time.time() > f["expires"]:
                return self.not_found(req)
        ext = f["ext"]
        if ext == "pdf":
            return emu.Response(200, PDF_BYTES, None, "application/pdf")
        if ext in ("txt", "md"):
            prefix = "# " if ext == "md" else ""
            return emu.Response(200, (prefix + f["text"]).encode("utf-8"), None,
                                "text/plain; charset=utf-8")
        return emu.Response(200, ZIP_BYTES, None, "application/octet-stream")

    def serve_upload(self, req):
        with self.lock:
            up = self.uploads.get(req.path[len("/uploads/"):])
        if up is None:
            return self.not_found(req)
        return emu.Response(200, up["data"], None, up["content_type"] or "application/octet-stream")

    def serve_view(self, req):
        with self.lock:
            t = self.tasks.get(req.path[len("/view/"):])
        if t is None:
            return self.not_found(req)
        return emu.Response(200, "<html><body>%s</body></html>" % ocrtext.xml_escape(t["text"]),
                            None, "text/html; charset=utf-8")


if __name__ == "__main__":
    emu.serve(OldFish())
