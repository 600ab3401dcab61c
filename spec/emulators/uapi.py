"""UAPI "Universal OCR" emulator (its public API documentation).

One route, `POST /api/v1/image/ocr`, strict about the documented contract. Facts from the public
SDK (AxT-Team/uapi-sdk-python) are marked (public); choices where both are silent are marked
(inferred).

Every answer carries `X-Request-Id` (public) and is JSON; errors are `{code, message}` with the
SDK's codes and messages (public):
  400 INVALID_PARAMETER                 missing source (doc "Format 1"), conflicting sources
                                        ("Format 2"), bad base64 ("Format 3"), bad booleans (doc),
                                        unknown or repeated fields, a non-multipart body, a url
                                        that is not http(s) (inferred)
  401 UNAUTHORIZED                      an Authorization header that is not `Bearer <valid key>`
  402 INSUFFICIENT_CREDITS              a key whose account has fewer credits than one call costs
  413 FILE_TOO_LARGE                    image bytes over max_file_size (10485760); for
                                        image_base64 the decoded bytes count (inferred)
  415 UNSUPPORTED_MEDIA_TYPE            bytes that are no PNG/JPEG/GIF/BMP/WebP/TIFF image
  429 SERVICE_BUSY + Retry-After        over `rate_limit` requests per second per caller
  429 VISITOR_MONTHLY_QUOTA_EXHAUSTED   an anonymous call with the visitor quota used up (public:
                                        the SDK maps this code to 429, not 402; no Retry-After,
                                        the quota is monthly)
  502 REQUEST_FAILED                    the engine failed (setting engine_errors)
  503 SERVICE_TEMPORARILY_UNAVAILABLE   the engine is unavailable (setting engine_errors)
  404 NOT_FOUND / 405 METHOD_NOT_ALLOWED other paths / methods (inferred)

Order of checks (inferred, gateway-style): Authorization -> rate limit -> quota -> multipart ->
fields -> sources -> size -> base64 -> url -> image format -> engine. The rate limit counts every
request of a caller (the key, or "visitor"), even one later refused.

Fields (multipart/form-data only, doc): file (a file part), url, image_base64, image_name,
need_location, return_markdown, enable_cls (text fields, UTF-8), each at most once (inferred);
anything else -> 400 (inferred). Exactly one of file / url / image_base64; a present but empty
source counts as absent (inferred). image_base64 is a data URI (`data:<type>;base64,<b64>`) or bare
base64; ASCII whitespace is ignored, padding is required (inferred). Booleans are exactly "true" or
"false"; defaults need_location=true, return_markdown=false, enable_cls=false (doc).

Billing (doc: 4 credits per call): a call that reaches the engine costs `price` credits, charged to
the key's account (setting `credits`, per key) or to the visitor quota (`visitor_credits`). A 502
is charged (inferred: recognition ran and failed; that is why a client must not re-send it); a
503 is not (the service refused before recognising anything).

Success (200, public SDK shape): text (lines joined by "\\n"), plain_text (the same), markdown
(only with return_markdown=true: the first line as a "# " heading, then one paragraph per line),
need_location, words_result_num, words_result[] {words, score (0..1: ocrtext confidence / 100),
location {left, top, width, height}, vertexes_location [4 x {x, y}] clockwise from top-left} —
location and vertexes_location omitted with need_location=false — plus lines, blocks, pages,
image {width, height}, summary, timing. Setting `omit_fields` drops top-level fields (to test
clients' fallbacks). Text per ocrtext.py (the "TEXT:" marker); a url recognises as `url_text`.

Settings (POST /_emu/config): api_key (string or list), anonymous (allow visitor calls, default
true), credits (per key, default 100000), visitor_credits (default 40), price (4), rate_limit (0 =
off), retry_after (seconds, default 1), max_file_size, default_text, url_text, engine_errors (a
list of 502/503 statuses, one consumed per call reaching the engine), omit_fields.
State (GET /_emu/state): {calls: [{caller ("visitor" or the key), request_id, source, the
booleans as received (and whether each was sent), image_name, filename, size, outcome}], charged,
visitor_used, credits_used: {key: n}}.
"""
import base64
import binascii
import re
import time
import urllib.parse
import uuid

import emu
import ocrtext

OCR_PATH = "/api/v1/image/ocr"

DEFAULTS = {
    "api_key": "test-uapi-key",
    "anonymous": True,
    "credits": 100000,
    "visitor_credits": 40,
    "price": 4,
    "rate_limit": 0,
    "retry_after": 1,
    "max_file_size": 10 * 1024 * 1024,
    "default_text": ocrtext.DEFAULT_TEXT,
    "url_text": ocrtext.DEFAULT_TEXT,
    "engine_errors": [],
    "omit_fields": [],
}

SOURCES = ("file", "url", "image_base64")
BOOLEANS = ("need_location", "return_markdown", "enable_cls")
BOOL_DEFAULTS = {"need_location": True, "return_markdown": False, "enable_cls": False}
FIELDS = set(SOURCES) | set(BOOLEANS) | {"image_name"}
ACCEPTED = {"png", "jpeg", "gif", "bmp", "webp", "tiff"}

# The SDK's example messages (public), so specs see what a real client would.
MSG_MISSING = "file、url、image_base64 三个来源里至少要传一个"
MSG_CONFLICT = "file、url、image_base64 请勿同时提交，只能选择一种方式"
MSG_BASE64 = "image_base64 不是有效的图片 Base64 数据"
MSG_TOO_LARGE = "图片大小不能超过 %d 字节"
MSG_UNSUPPORTED = "当前只接受常见图片格式"
MSG_FAILED = "文字识别失败，请稍后再试"
MSG_UNAVAILABLE = "文字识别服务暂时不可用，请稍后再试"

DATA_URI = re.compile(r"^data:[A-Za-z0-9!#$&^_.+-]*/?[A-Za-z0-9!#$&^_.+-]*(;[^,;]*)*;base64,",
                      re.IGNORECASE)
WHITESPACE = re.compile(r"[ \t\r\n]+")


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class Uapi(emu.Emulator):
    name = "uapi"

    def __init__(self):
        super().__init__()
        self.route("POST", OCR_PATH, self.ocr)
        self.route("*", OCR_PATH, self.wrong_method)

    # -- settings & state -----------------------------------------------------------------
    def reset_state(self):
        self.calls = []
        self.recent = {}          # caller -> [monotonic times of requests in the last second]
        self.visitor_used = 0
        self.credits_used = {}
        self.charged = 0
        self.engine_queue = None  # copied from the setting at the first call after a change

    def config(self, settings):
        super().config(settings)
        if "engine_errors" in settings:
            self.engine_queue = list(settings["engine_errors"])

    def opt(self, key):
        return self.settings.get(key, DEFAULTS[key])

    def state_snapshot(self):
        with self.lock:
            return {"calls": list(self.calls), "charged": self.charged,
                    "visitor_used": self.visitor_used, "credits_used": dict(self.credits_used)}

    # -- answers --------------------------------------------------------------------------
    @staticmethod
    def answer(status, body, headers=None, request_id=None):
        h = {"X-Request-Id": request_id or uuid.uuid4().hex}
        h.update(headers or {})
        res = emu.Response.json(body, status, h)
        res.headers["Content-Type"] = "application/json; charset=utf-8"
        return res

    def error(self, e, request_id=None):
        return self.answer(e.status, {"code": e.code, "message": e.message}, e.headers, request_id)

    def not_found(self, req):
        return self.error(ApiError(404, "NOT_FOUND", "接口不存在"))

    def wrong_method(self, req):
        return self.error(ApiError(405, "METHOD_NOT_ALLOWED", "请使用 POST 方法"))

    # -- gateway ----------------------------------------------------------------------------
    def caller(self, req):
        """The key of a valid Bearer header, None for a visitor; raises 401 otherwise."""
        auth = req.headers.get("authorization")
        if auth is None:
            if not self.opt("anonymous"):
                raise ApiError(401, "UNAUTHORIZED", "请求未授权：缺少 API Key")
            return None
        keys = self.opt("api_key")
        keys = keys if isinstance(keys, list) else [keys]
        m = re.match(r"^Bearer ([^\s]+)$", auth)
        if not m or m.group(1) not in keys:
            raise ApiError(401, "UNAUTHORIZED", "请求未授权：API Key 无效")
        return m.group(1)

    def check_rate(self, who, now):
        limit = self.opt("rate_limit")
        with self.lock:
            recent = [t for t in self.recent.get(who, []) if now - t < 1.0]
            recent.append(now)
            self.recent[who] = recent
            if limit and len(recent) > limit:
                raise ApiError(429, "SERVICE_BUSY", "请求过于频繁，请稍后再试",
                               {"Retry-After": str(self.opt("retry_after"))})

    def check_quota(self, key):
        price = self.opt("price")
        with self.lock:
            if key is None:
                if self.visitor_used + price > self.opt("visitor_credits"):
                    raise ApiError(429, "VISITOR_MONTHLY_QUOTA_EXHAUSTED",
                                   "访客月度免费额度已用尽，请使用 API Key 继续调用")
            elif self.credits_used.get(key, 0) + price > self.opt("credits"):
                raise ApiError(402, "INSUFFICIENT_CREDITS", "账户积分不足")

    def charge(self, key):
        price = self.opt("price")
        with self.lock:
            self.charged += price
            if key is None:
                self.visitor_used += price
            else:
                self.credits_used[key] = self.credits_used.get(key, 0) + price

    # -- the request --------------------------------------------------------------------------
    def ocr(self, req):
        call = {"caller": None, "outcome": None, "request_id": uuid.uuid4().hex}
        try:
            key = self.caller(req)
            call["caller"] = key or "visitor"
            self.check_rate(call["caller"], req.arrived_mono)
            self.check_quota(key)
            fields = self.parse(req, call)
            image = self.image_of(fields, call)
            body = self.recognise(key, fields, image, call)
        except ApiError as e:
            call["outcome"] = e.status
            self.keep(call)
            return self.error(e, call["request_id"])
        call["outcome"] = 200
        self.keep(call)
        return self.answer(200, body, None, call["request_id"])

    def keep(self, call):
        with self.lock:
            self.calls.append(call)

    def parse(self, req, call):
        form = req.form()
        if form is None:
            raise ApiError(400, "INVALID_PARAMETER", "请求体必须是 multipart/form-data")
        out = {}
        for name, parts in form.items():
            if name not in FIELDS:
                raise ApiError(400, "INVALID_PARAMETER", "不支持的参数：%s" % name)
            if len(parts) != 1:
                raise ApiError(400, "INVALID_PARAMETER", "参数 %s 只能传一次" % name)
            part = parts[0]
            if name == "file":
                if part.filename is None:
                    raise ApiError(400, "INVALID_PARAMETER", "file 必须以文件形式上传")
                out["file"] = part
                continue
            if part.filename is not None:
                raise ApiError(400, "INVALID_PARAMETER", "%s 必须是普通表单字段" % name)
            try:
                out[name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "INVALID_PARAMETER", "%s 不是有效的 UTF-8 文本" % name)
        for name in BOOLEANS:
            if name in out:
                if out[name] not in ("true", "false"):
                    raise ApiError(400, "INVALID_PARAMETER", "%s 只能是 true 或 false" % name)
                call[name] = out[name] == "true"
            else:
                call[name] = BOOL_DEFAULTS[name]
            call[name + "_sent"] = name in out
        call["image_name"] = out.get("image_name") or None
        given = [s for s in SOURCES
                 if s in out and (out[s].data if s == "file" else out[s]) not in (b"", "")]
        if not given:
            raise ApiError(400, "INVALID_PARAMETER", MSG_MISSING)
        if len(given) > 1:
            raise ApiError(400, "INVALID_PARAMETER", MSG_CONFLICT)
        call["source"] = given[0]
        return out

    def image_of(self, fields, call):
        """The image bytes (None for a url), after the size, base64 and format checks."""
        limit = self.opt("max_file_size")
        src = call["source"]
        if src == "url":
            url = fields["url"]
            call["url"] = url
            u = urllib.parse.urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ApiError(400, "INVALID_PARAMETER", "url 必须是 http 或 https 链接")
            return None
        if src == "file":
            part = fields["file"]
            data = part.data
            call.update(filename=part.filename, content_type=part.content_type, size=len(data))
            if len(data) > limit:
                raise ApiError(413, "FILE_TOO_LARGE", MSG_TOO_LARGE % limit)
        else:
            raw = fields["image_base64"]
            m = DATA_URI.match(raw)
            call["data_uri"] = m is not None
            payload = WHITESPACE.sub("", raw[m.end():] if m else raw)
            # Decoded size is at most 3/4 of the text: refuse what cannot fit before decoding.
            if len(payload) // 4 * 3 > limit + 2:
                raise ApiError(413, "FILE_TOO_LARGE", MSG_TOO_LARGE % limit)
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "INVALID_PARAMETER", MSG_BASE64)
            if not data:
                raise ApiError(400, "INVALID_PARAMETER", MSG_BASE64)
            call["size"] = len(data)
            if len(data) > limit:
                raise ApiError(413, "FILE_TOO_LARGE", MSG_TOO_LARGE % limit)
        kind = ocrtext.detect_format(data)
        call["detected"] = kind
        if kind not in ACCEPTED:
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", MSG_UNSUPPORTED)
        return data

    def recognise(self, key, fields, image, call):
        with self.lock:
            if self.engine_queue is None:
                self.engine_queue = list(self.opt("engine_errors"))
            failure = self.engine_queue.pop(0) if self.engine_queue else None
        if failure == 503:
            raise ApiError(503, "SERVICE_TEMPORARILY_UNAVAILABLE", MSG_UNAVAILABLE)
        self.charge(key)
        if failure is not None:
            raise ApiError(int(failure), "REQUEST_FAILED", MSG_FAILED)
        if image is None:
            text = self.opt("url_text")
        else:
            text = ocrtext.text_of(image, self.opt("default_text"))
        return self.body(text, call["need_location"], call["return_markdown"])

    def body(self, text, need_location, markdown):
        lines = ocrtext.lines_of(text)
        words, line_objs = [], []
        width = height = 0
        for i, ln in enumerate(lines):
            x, y, w, h = ocrtext.line_box(i, ln)
            width, height = max(width, x + w + ocrtext.LEFT), max(height, y + h + ocrtext.TOP)
            item = {"words": ln, "score": ocrtext.confidence(ln) / 100.0}
            line = {"text": ln, "score": item["score"]}
            if need_location:
                item["location"] = {"left": x, "top": y, "width": w, "height": h}
                item["vertexes_location"] = [{"x": x, "y": y}, {"x": x + w, "y": y},
                                             {"x": x + w, "y": y + h}, {"x": x, "y": y + h}]
                line["location"] = dict(item["location"])
            words.append(item)
            line_objs.append(line)
        joined = "\n".join(lines)
        body = {
            "text": joined,
            "plain_text": joined,
            "need_location": need_location,
            "words_result_num": len(words),
            "words_result": words,
            "lines": line_objs,
            "blocks": [{"text": joined}] if lines else [],
            "pages": [{"page": 1, "text": joined}],
            "image": {"width": width, "height": height},
            "summary": {"line_count": len(lines), "block_count": 1 if lines else 0},
            "timing": {"total_ms": 3},
        }
        if markdown:
            body["markdown"] = "\n\n".join(["# " + lines[0]] + lines[1:]) if lines else ""
        for name in self.opt("omit_fields"):
            body.pop(name, None)
        return body


if __name__ == "__main__":
    emu.serve(Uapi())
