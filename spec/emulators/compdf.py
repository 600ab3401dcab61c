"""ComPDF document AI OCR emulator (its public API documentation and what is known beyond it).

Strict about the documented contract, so a provider that passes against it is right by
construction. Choices where the documentation does not say are marked (inferred).

API (under /server/, like the real base https://api-server.compdf.com/server/; JSON bodies
`{code, msg, data?}` with `code` a *string*, "200" on success):
  POST /server/v2/process/documentAI/ocr         sync: process at once, data = one file object
  POST /server/v2/processAsync/documentAI/ocr    async: data = {taskId}
  GET  /server/v2/task/taskInfo?taskId=&language=   poll; each poll advances the task one step
  POST /server/v2/presignedUrl/documentAI/ocr    presigned: data = {taskId, presignedUrl}
  PUT  /storage/upload/<token>?Expires=&Signature=  the pre-signed upload (no x-api-key needed)
  GET  /server/v2/execute/start?taskId=&language=   start a presigned task once uploaded
  GET  /download/<fileKey>?expires=N              a result file (pre-signed: no x-api-key)

Authentication: every /server/ request needs `x-api-key` equal to setting `api_key` (or one of a
list); otherwise HTTP 401 {"code": "401"} (inferred: the code is not documented).

Multipart fields on the three creates (anything else, a repeat, or a file part where a value is
expected -> 01006):
  file                      the upload, a file part with a filename (sync, async; refused in
                            presigned mode, where `fileName` is required instead)
  fileName                  presigned only, required, the name the upload URL is made for
  password, language, callbackUrl       always top level
  pageRanges, enableOcr, ocrRecognitionLang, ocrOption, isOutputDocumentPerPage
                            top level, OR as keys of one JSON object in the legacy `parameter`
                            field - never both in one request (inferred); JSON values may be
                            strings or integers (inferred)
Values (01006 otherwise): enableOcr / isOutputDocumentPerPage "0"|"1"; language "1"|"2";
ocrRecognitionLang one of LANGS; ocrOption one of OCR_OPTIONS; pageRanges empty (all pages) or
`N[-M](,N[-M])*` with 1 <= N <= M; callbackUrl an http(s) URL.

Order of checks on a create: key (401) -> multipart (01006) -> fields and values (01006) ->
file present (01006) / empty (01005) -> size over `max_file_size` (02209, HTTP 413) -> format
by magic number (02002: PDF PNG JPEG BMP TIFF GIF WEBP only) -> credits (06001, HTTP 402, when
setting `credits` is a number and it is 0; each accepted sync/async create or presigned start
costs 1 (inferred)) -> (sync only) encryption: bytes containing "/Encrypt" need `password` equal
to setting `pdf_password` (02201). Async and presigned tasks fail an encrypted file later, in
taskInfo, with failureCode 02201 (inferred: they are checked while processing).

Result of OCR (ocrtext.py): the recognised text; pages are "\\f"-separated; `pageRanges` keeps
the listed pages (numbers past the end are ignored, inferred). Setting `target_type`:
  txt (default) the pages joined by "\\n"; md the same; html <html><body><p>line</p>...;
  json {"pages": [{"pageIndex": 1, "text": ..., "lines": [...]}]} (inferred shape);
  docx / xlsx / pptx bytes starting "PK\\x03\\x04"; pdf bytes starting "%PDF-1.4".
isOutputDocumentPerPage=1: async/presigned answer one fileInfoDTOList entry per page; sync (whose
`data` is a single file) answers one zip archive of the per-page files (inferred).

File objects (sync `data`, taskInfo `fileInfoDTOList[]`): fileKey, taskId, fileName,
downFileName (<stem>.<target>, <stem>_<n>.<target> per page, or setting `down_file_name`
verbatim - e.g. "../../etc/passwd" - so specs prove a client sanitises it), fileUrl,
downloadUrl (<result_base or base_url>/download/<fileKey>?expires=<unix>, valid `file_ttl` s,
24 h by default), sourceType, targetType, fileSize, convertSize, convertTime, status
("success" | "failed" | "waiting" | "processing"), failureCode, failureReason, fileParameter (the
options as a JSON string). Setting `fail_file` {failureCode, failureReason} fails every file
(sync: code "200" with data.status "failed"). Setting `sync_status` "processing" makes the sync
answer come back unfinished (status "processing", no downloadUrl); that task then finishes through
taskInfo like an async one.

Tasks: a new task copies setting `script` (task states, default TaskStart, TaskWaiting,
TaskProcessing, TaskFinish); poll n shows step n (the last repeats). A presigned task shows
TaskStart without advancing until started. While unfinished, fileInfoDTOList entries have status
"waiting"/"processing" and no downloadUrl. TaskOverdue is a state the script may contain. A task
older than `task_ttl` s answers 05004 (HTTP 410); an unknown taskId 05001 (HTTP 404); a missing
taskId or unknown query parameter 01006.

Pre-signed upload: exactly one PUT per URL; it needs a Content-Type (400 otherwise) and a
Content-Length (411 otherwise, as object stores do); a second PUT, a wrong Signature, or one after
`presign_ttl` s -> 403 AccessDenied (S3-style XML). execute/start: unknown task 05001, not
uploaded 01005 (inferred), already started 01006 (inferred), over `max_file_size` 02209, format
02002, credits 06001.

Downloads past `expires`, with a tampered or missing `expires` -> 403 AccessDenied XML "Request has
expired."; unknown fileKey -> 404 NoSuchKey.

error_style "http" (default): errors carry HTTP 401/402/404/410/413/500 as the vendor documents and
400 for the other business codes (inferred); "body": every API error is HTTP 200 with the code
only in the body. `language` 2 gives Chinese `msg` texts.

Settings (POST /_emu/config): api_key, script, error_style, max_file_size, pdf_password, credits,
target_type, down_file_name, fail_file, sync_status, file_ttl, task_ttl, presign_ttl,
default_text, result_base.
State: {"tasks": {taskId: {...}}, "credits": n|None, "uploads": n}.
"""
import hashlib
import hmac
import io
import json
import math
import re
import time
import uuid
import zipfile

import emu
import ocrtext

DEFAULTS = {
    "api_key": "test-compdf-key",
    "script": ["TaskStart", "TaskWaiting", "TaskProcessing", "TaskFinish"],
    "error_style": "http",
    "max_file_size": 10 * 1024 * 1024,
    "pdf_password": "secret",
    "credits": None,
    "target_type": "txt",
    "down_file_name": None,
    "fail_file": None,
    "sync_status": "success",
    "file_ttl": 24 * 3600,
    "task_ttl": 24 * 3600,
    "presign_ttl": 900,
    "default_text": ocrtext.DEFAULT_TEXT,
    "result_base": None,
}

BASE = "/server/v2/"
SYNC = BASE + "process/documentAI/ocr"
ASYNC = BASE + "processAsync/documentAI/ocr"
PRESIGN = BASE + "presignedUrl/documentAI/ocr"
TASK_INFO = BASE + "task/taskInfo"
START = BASE + "execute/start"
UPLOAD = "/storage/upload/"
DOWNLOAD = "/download/"

OPTION_FIELDS = ["pageRanges", "enableOcr", "ocrRecognitionLang", "ocrOption",
                 "isOutputDocumentPerPage"]
COMMON_FIELDS = {"password", "language", "callbackUrl", "parameter"}
LANGS = {"AUTO", "CHINESE", "CHINESE_TRAD", "ENGLISH", "KOREAN", "JAPANESE", "LATIN",
         "DEVANAGARI", "CYRILLIC", "ARABIC", "TAMIL", "TELUGU", "KANNADA", "THAI", "GREEK",
         "ESLAV"}
OCR_OPTIONS = {"ALL", "SCAN_PAGE", "INVALID_CHARACTER", "INVALID_CHARACTER_AND_SCAN_PAGE"}
TASK_STATES = {"TaskStart", "TaskWaiting", "TaskProcessing", "TaskFinish", "TaskOverdue"}
ACCEPTED_MAGIC = {"pdf", "png", "jpeg", "bmp", "tiff", "gif", "webp"}
PAGE_RANGES = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")

# code -> (HTTP status in error_style "http", English msg, Chinese msg)
CODES = {
    "401": (401, "Unauthorized: invalid or missing x-api-key.", "未授权：x-api-key 无效或缺失。"),
    "01001": (500, "System error.", "系统错误。"),
    "01002": (500, "System busy, please try again later.", "系统繁忙，请稍后重试。"),
    "01003": (500, "Service unavailable.", "服务不可用。"),
    "01004": (500, "Internal processing error.", "内部处理错误。"),
    "01005": (400, "The file is empty.", "文件为空。"),
    "01006": (400, "Invalid parameters.", "参数无效。"),
    "02002": (400, "Unsupported file format.", "不支持的文件格式。"),
    "02201": (400, "The file is encrypted: a correct password is required.", "文件已加密，需要正确的密码。"),
    "02209": (413, "The file is too large.", "文件过大。"),
    "05001": (404, "Task not found.", "任务不存在。"),
    "05004": (410, "The task has expired.", "任务已过期。"),
    "06001": (402, "Insufficient credits.", "余额不足。"),
}

PDF_BYTES = b"%PDF-1.4\n% lua-ocr compdf emulator result\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
ZIP_BYTES = b"PK\x03\x04" + b"\x14\x00\x00\x00\x00\x00lua-ocr compdf emulator result"
SECRET = b"compdf-emulator-presign"


class ApiError(Exception):
    def __init__(self, code, detail=None):
        super().__init__(code)
        self.code, self.detail = code, detail


def ext_of(name):
    m = re.search(r"\.([A-Za-z0-9]+)$", name or "")
    return m.group(1).lower() if m else ""


def stem_of(name):
    base = re.split(r"[/\\]", name or "")[-1]
    return re.sub(r"\.[A-Za-z0-9]+$", "", base) or "document"


class ComPDF(emu.Emulator):
    name = "compdf"

    def __init__(self):
        super().__init__()
        self.route("POST", SYNC, lambda r: self.create(r, "sync"))
        self.route("POST", ASYNC, lambda r: self.create(r, "async"))
        self.route("POST", PRESIGN, lambda r: self.create(r, "presigned"))
        self.route("GET", TASK_INFO, self.task_info)
        self.route("GET", START, self.start)
        self.route("PUT", UPLOAD, self.upload)
        self.route("GET", DOWNLOAD, self.download)
        self.route("HEAD", DOWNLOAD, self.download)

    # -- settings & state -------------------------------------------------------------------
    def reset_state(self):
        self.tasks = {}
        self.files = {}      # fileKey -> {"body", "ctype", "expires"}
        self.uploads = {}    # token -> taskId
        self.credits_used = 0

    def opt(self, key):
        return self.settings.get(key, DEFAULTS[key])

    def state_snapshot(self):
        with self.lock:
            tasks = {}
            for tid, t in self.tasks.items():
                tasks[tid] = {k: v for k, v in t.items() if k not in ("data", "pages", "files")}
                tasks[tid]["size"] = len(t["data"]) if t["data"] is not None else None
                tasks[tid]["files"] = [dict((k, v) for k, v in f.items() if k != "body")
                                       for f in t["files"]]
            credits = self.opt("credits")
            return {"tasks": tasks, "uploads": len(self.uploads),
                    "credits": None if credits is None else credits - self.credits_used}

    # -- responses ------------------------------------------------------------------------
    def error(self, code, detail=None, lang="1"):
        status, en, zh = CODES.get(code, (400, "Error.", "错误。"))
        msg = zh if lang == "2" else en
        if detail:
            msg = msg + " " + detail
        http_status = status if self.opt("error_style") == "http" else 200
        return emu.Response.json({"code": code, "msg": msg}, http_status)

    @staticmethod
    def ok(data):
        return emu.Response.json({"code": "200", "msg": "success", "data": data})

    def not_found(self, req):
        return emu.Response.json({"code": "404", "msg": "No such route."}, 404)

    @staticmethod
    def storage_error(status, code, message):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                '<RequestId>%s</RequestId></Error>\n'
                % (code, ocrtext.xml_escape(message), uuid.uuid4().hex[:24]))
        return emu.Response(status, body, None, "application/xml")

    def check_key(self, req):
        keys = self.opt("api_key")
        keys = keys if isinstance(keys, list) else [keys]
        if req.headers.get("x-api-key") not in keys:
            raise ApiError("401")

    # -- creates --------------------------------------------------------------------------
    def create(self, req, mode):
        lang = "1"
        try:
            self.check_key(req)
            fields, upload = self.parse_form(req, mode)
            lang = fields.get("language", "1")
            if mode == "presigned":
                return self.ok(self.new_presigned(fields))
            self.check_file(upload)
            if mode == "sync" and b"/Encrypt" in upload.data and \
                    fields.get("password") != self.opt("pdf_password"):
                raise ApiError("02201")
            self.take_credit()
            task = self.new_task(mode, fields, upload.filename, upload.data)
            if mode == "async":
                return self.ok({"taskId": task["taskId"]})
            return self.ok(self.sync_answer(task))
        except ApiError as e:
            return self.error(e.code, e.detail, lang)

    def parse_form(self, req, mode):
        form = req.form()
        if form is None:
            raise ApiError("01006", "Content-Type must be multipart/form-data.")
        allowed = set(OPTION_FIELDS) | COMMON_FIELDS | ({"fileName"} if mode == "presigned" else {"file"})
        values, upload = {}, None
        for name, parts in form.items():
            if name not in allowed:
                raise ApiError("01006", "Unknown parameter: %s." % name)
            if len(parts) != 1:
                raise ApiError("01006", "Parameter %s given more than once." % name)
            part = parts[0]
            if name == "file":
                if part.filename is None:
                    raise ApiError("01006", "file must be a file part (with a filename).")
                upload = part
                continue
            if part.filename is not None:
                raise ApiError("01006", "%s must be a text field, not a file." % name)
            try:
                values[name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError("01006", "%s is not valid UTF-8." % name)
        if "parameter" in values:
            clash = [f for f in OPTION_FIELDS if f in values]
            if clash:
                raise ApiError("01006", "Use either parameter or top-level fields, not both (%s)."
                               % ", ".join(clash))
            values.update(self.parse_parameter(values.pop("parameter")))
            values["legacy"] = True
        self.check_values(values)
        if mode == "presigned":
            if not values.get("fileName"):
                raise ApiError("01006", "fileName is required.")
        elif upload is None:
            raise ApiError("01006", "file is required.")
        return values, upload

    @staticmethod
    def parse_parameter(text):
        try:
            obj = json.loads(text)
        except ValueError:
            raise ApiError("01006", "parameter is not JSON.")
        if not isinstance(obj, dict):
            raise ApiError("01006", "parameter must be a JSON object.")
        out = {}
        for k, v in obj.items():
            if k not in OPTION_FIELDS:
                raise ApiError("01006", "Unknown key in parameter: %s." % k)
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise ApiError("01006", "parameter.%s must be a string or an integer." % k)
            out[k] = str(v)
        return out

    @staticmethod
    def check_values(v):
        for name in ("enableOcr", "isOutputDocumentPerPage"):
            if name in v and v[name] not in ("0", "1"):
                raise ApiError("01006", "%s must be 0 or 1." % name)
        if "language" in v and v["language"] not in ("1", "2"):
            raise ApiError("01006", "language must be 1 or 2.")
        if "ocrRecognitionLang" in v and v["ocrRecognitionLang"] not in LANGS:
            raise ApiError("01006", "Unsupported ocrRecognitionLang.")
        if "ocrOption" in v and v["ocrOption"] not in OCR_OPTIONS:
            raise ApiError("01006", "Unsupported ocrOption.")
        pr = v.get("pageRanges", "")
        if pr != "":
            if not PAGE_RANGES.match(pr):
                raise ApiError("01006", "pageRanges must look like 1-3,6.")
            for item in pr.split(","):
                a, _, b = item.partition("-")
                lo, hi = int(a), int(b or a)
                if lo < 1 or hi < lo:
                    raise ApiError("01006", "pageRanges has an empty or zero range: %s." % item)
        cb = v.get("callbackUrl")
        if cb is not None and not re.match(r"^https?://[^/\s]+\S*$", cb):
            raise ApiError("01006", "callbackUrl must be an http(s) URL.")

    def check_file(self, part_or_bytes):
        data = part_or_bytes.data if hasattr(part_or_bytes, "data") else part_or_bytes
        if not data:
            raise ApiError("01005")
        if len(data) > self.opt("max_file_size"):
            raise ApiError("02209")
        if ocrtext.detect_format(data) not in ACCEPTED_MAGIC:
            raise ApiError("02002")

    def take_credit(self):
        with self.lock:
            credits = self.opt("credits")
            if credits is not None and credits - self.credits_used <= 0:
                raise ApiError("06001")
            self.credits_used += 1

    # -- tasks ----------------------------------------------------------------------------
    def new_presigned(self, fields):
        task = self.new_task("presigned", fields, fields["fileName"], None)
        token = uuid.uuid4().hex
        expires = int(math.ceil(time.time() + float(self.opt("presign_ttl"))))
        with self.lock:
            self.uploads[token] = task["taskId"]
            task["upload"] = {"token": token, "expires": expires, "used": False,
                              "content_type": None}
        base = self.opt("result_base") or self.base_url
        url = "%s%s%s?Expires=%d&Signature=%s" % (base, UPLOAD, token, expires,
                                                   self.sign(token, expires))
        return {"taskId": task["taskId"], "presignedUrl": url}

    @staticmethod
    def sign(token, expires):
        return hmac.new(SECRET, ("%s:%d" % (token, expires)).encode(), hashlib.sha256).hexdigest()

    def new_task(self, mode, fields, filename, data):
        script = [s for s in self.opt("script") if s in TASK_STATES] or list(DEFAULTS["script"])
        task = {
            "taskId": uuid.uuid4().hex,
            "mode": mode,
            "created": time.time(),
            "fileName": filename,
            "data": data,
            "fields": fields,
            "legacy": bool(fields.get("legacy")),
            "steps": script,
            "step": -1,
            "polls": 0,
            "started": mode != "presigned",
            "files": [],
            "target": self.opt("target_type"),
        }
        if data is not None:
            task["files"] = self.process(task)
        with self.lock:
            self.tasks[task["taskId"]] = task
        return task

    def options_json(self, fields):
        return json.dumps({k: fields[k] for k in OPTION_FIELDS if k in fields}, ensure_ascii=False)

    def process(self, task):
        """The file objects of a task's result (kept until TaskFinish shows them)."""
        fields, data = task["fields"], task["data"]
        base = dict(taskId=task["taskId"], fileName=task["fileName"],
                    fileUrl="source/%s" % uuid.uuid4().hex, sourceType=ext_of(task["fileName"]),
                    fileSize=len(data), fileParameter=self.options_json(fields))
        fail = self.opt("fail_file")
        if fail is None and b"/Encrypt" in data and fields.get("password") != self.opt("pdf_password"):
            fail = {"failureCode": "02201", "failureReason": CODES["02201"][1]}
        if fail is not None:
            return [dict(base, fileKey=uuid.uuid4().hex, downFileName="", downloadUrl="",
                         targetType=task["target"], convertSize=0, convertTime=0, status="failed",
                         failureCode=str(fail.get("failureCode", "")),
                         failureReason=str(fail.get("failureReason", "")))]
        pages = ocrtext.pages_of(ocrtext.text_of(data, self.opt("default_text")))
        pages = self.select_pages(pages, fields.get("pageRanges", ""))
        target = task["target"]
        stem = stem_of(task["fileName"])
        per_page = fields.get("isOutputDocumentPerPage") == "1"
        if per_page and task["mode"] == "sync":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for n, text in pages:
                    z.writestr("%s_%d.%s" % (stem, n, target), self.render(target, [(n, text)]))
            outputs = [("%s.zip" % stem, "zip", buf.getvalue())]
        elif per_page:
            outputs = [("%s_%d.%s" % (stem, n, target), target, self.render(target, [(n, text)]))
                       for n, text in pages]
        else:
            outputs = [("%s.%s" % (stem, target), target, self.render(target, pages))]
        files = []
        for name, ttype, body in outputs:
            key = uuid.uuid4().hex
            files.append(dict(base, fileKey=key, downFileName=self.opt("down_file_name") or name,
                              targetType=ttype, convertSize=len(body), convertTime=42,
                              status="success", failureCode="", failureReason="", body=body))
        return files

    @staticmethod
    def select_pages(pages, ranges):
        numbered = list(enumerate(pages, 1))
        if not ranges:
            return numbered
        keep = set()
        for item in ranges.split(","):
            a, _, b = item.partition("-")
            keep.update(range(int(a), int(b or a) + 1))
        return [(n, t) for n, t in numbered if n in keep]

    @staticmethod
    def render(target, pages):
        if target in ("txt", "md"):
            return "\n".join(t for _, t in pages).encode("utf-8")
        if target == "html":
            paras = "".join("<p>%s</p>" % ocrtext.xml_escape(ln)
                            for _, t in pages for ln in ocrtext.lines_of(t))
            return ("<html><body>%s</body></html>" % paras).encode("utf-8")
        if target == "json":
            return json.dumps({"pages": [{"pageIndex": n, "text": t, "lines": ocrtext.lines_of(t)}
                                         for n, t in pages]}, ensure_ascii=False).encode("utf-8")
        if target == "pdf":
            return PDF_BYTES
        return ZIP_BYTES

    def publish(self, f):
        """The client view of a finished file: registers its download and adds downloadUrl."""
        out = {k: v for k, v in f.items() if k != "body"}
        if f["status"] != "success":
            return out
        with self.lock:
            entry = self.files.get(f["fileKey"])
            if entry is None:
                expires = int(math.ceil(time.time() + float(self.opt("file_ttl"))))
                ctype = "application/json" if f["targetType"] == "json" else \
                    "text/plain; charset=utf-8" if f["targetType"] in ("txt", "md") else \
                    "text/html; charset=utf-8" if f["targetType"] == "html" else \
                    "application/octet-stream"
                entry = {"body": f["body"], "expires": expires, "ctype": ctype}
                self.files[f["fileKey"]] = entry
        base = self.opt("result_base") or self.base_url
        out["downloadUrl"] = "%s%s%s?expires=%d" % (base, DOWNLOAD, f["fileKey"], entry["expires"])
        return out

    def sync_answer(self, task):
        status = self.opt("sync_status")
        if status != "success" and task["files"] and task["files"][0]["status"] == "success":
            f = {k: v for k, v in task["files"][0].items() if k != "body"}
            f.update(status=status, downloadUrl="", downFileName="", convertSize=0)
            return f
        task["steps"] = ["TaskFinish"]
        return self.publish(task["files"][0])

    # -- taskInfo / start -----------------------------------------------------------------
    def find_task(self, req):
        extra = set(req.query) - {"taskId", "language"}
        if extra:
            raise ApiError("01006", "Unknown query parameter: %s." % sorted(extra)[0])
        if req.query.get("language", "1") not in ("1", "2"):
            raise ApiError("01006", "language must be 1 or 2.")
        tid = req.query.get("taskId")
        if not tid:
            raise ApiError("01006", "taskId is required.")
        t = self.tasks.get(tid)
        if t is None:
            raise ApiError("05001")
        if time.time() - t["created"] > float(self.opt("task_ttl")):
            raise ApiError("05004")
        return t

    def task_info(self, req):
        lang = req.query.get("language", "1")
        try:
            self.check_key(req)
            with self.lock:
                t = self.find_task(req)
                t["polls"] += 1
                if t["started"]:
                    t["step"] = min(t["step"] + 1, len(t["steps"]) - 1)
                state = t["steps"][t["step"]] if t["step"] >= 0 else "TaskStart"
                return self.ok(self.describe(t, state))
        except ApiError as e:
            return self.error(e.code, e.detail, lang)

    def describe(self, t, state):
        files = []
        if state == "TaskFinish":
            files = [self.publish(f) for f in t["files"]]
        elif state in ("TaskWaiting", "TaskProcessing"):
            for f in t["files"]:
                g = {k: v for k, v in f.items() if k != "body"}
                g.update(status="waiting" if state == "TaskWaiting" else "processing",
                         downloadUrl="", downFileName="", convertSize=0, failureCode="",
                         failureReason="")
                files.append(g)
        ok = sum(1 for f in files if f["status"] == "success")
        bad = sum(1 for f in files if f["status"] == "failed")
        return {"taskId": t["taskId"], "taskFileNum": len(t["files"]) or 1,
                "taskSuccessNum": ok, "taskFailNum": bad, "taskStatus": state,
                "assetTypeId": 0, "taskCost": ok, "taskTime": int(time.time() - t["created"]),
                "sourceType": ext_of(t["fileName"]), "targetType": t["target"],
                "callbackUrl": t["fields"].get("callbackUrl", ""), "fileInfoDTOList": files}

    def start(self, req):
        lang = req.query.get("language", "1")
        try:
            self.check_key(req)
            with self.lock:
                t = self.find_task(req)
                if t["mode"] != "presigned" or t["started"]:
                    raise ApiError("01006", "The task has already been started.")
                if t["data"] is None:
                    raise ApiError("01005", "Nothing was uploaded to the pre-signed URL.")
                self.check_file(t["data"])
                self.take_credit()
                t["started"] = True
                t["files"] = self.process(t)
            return self.ok({"taskId": t["taskId"]})
        except ApiError as e:
            return self.error(e.code, e.detail, lang)

    # -- storage --------------------------------------------------------------------------
    def upload(self, req):
        token = req.path[len(UPLOAD):]
        with self.lock:
            tid = self.uploads.get(token)
            t = self.tasks.get(tid) if tid else None
            if t is None:
                return self.storage_error(404, "NoSuchUpload", "The upload URL is unknown.")
            up = t["upload"]
            try:
                expires = int(req.query.get("Expires", ""))
            except ValueError:
                expires = -1
            sig = req.query.get("Signature", "")
            if expires != up["expires"] or not hmac.compare_digest(sig, self.sign(token, expires)):
                return self.storage_error(403, "AccessDenied", "Signature does not match.")
            if time.time() > up["expires"]:
                return self.storage_error(403, "AccessDenied", "Request has expired.")
            if up["used"]:
                return self.storage_error(403, "AccessDenied", "The upload URL was already used.")
            if "content-length" not in req.headers:
                return self.storage_error(411, "MissingContentLength",
                                          "You must provide the Content-Length HTTP header.")
            ctype = req.headers.get("content-type", "")
            if not ctype:
                return self.storage_error(400, "InvalidRequest", "A Content-Type is required.")
            up.update(used=True, content_type=ctype, size=len(req.body or b""))
            t["data"] = req.body or b""
        return emu.Response(200, b"", {"ETag": '"%s"' % hashlib.md5(req.body or b"").hexdigest()})

    def download(self, req):
        key = req.path[len(DOWNLOAD):]
        with self.lock:
            f = self.files.get(key)
            if f is None:
                return self.storage_error(404, "NoSuchKey", "The specified key does not exist.")
            if req.query.get("expires") != str(f["expires"]) or time.time() > f["expires"]:
                return self.storage_error(403, "AccessDenied", "Request has expired.")
            return emu.Response(200, f["body"], None, f["ctype"])


if __name__ == "__main__":
    emu.serve(ComPDF())
