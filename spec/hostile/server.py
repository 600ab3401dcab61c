"""A hostile vendor: a proxy in front of a vendor emulator that turns every answer into an attack
of one class, chosen by the spec, so that each provider meets, deterministically, what an
attacker on the path (or a broken vendor) can send:

  long_header   a 60 KB X-Request-Id and X-Cos-Request-Id, a Retry-After of 60 KB of spaces
  ws_strings    every string in a JSON or XML answer wrapped in 100 KB runs of whitespace
  numbers       every number in an answer NaN, Infinity, -Infinity or 1e400
  ids           every id (id, task_id, taskId, ...) "..", ".", "a/../../b", "%2F..%2F" or 1 MB
  names         every file name or URL given a 1 MB last segment, "../../x", or "/etc/x"
  same_names    every file name and URL ends in the same name
  echo_secrets  a 400 whose message echoes the request's credentials (the Authorization
                header, the query, the body) raw, percent-encoded in lower case, with "+" for
                spaces, JSON-escaped and in base64
  endless       the answer's head, then a body that trickles forever
  stall         the answer's head, then nothing

    python3 spec/hostile/server.py --port 0 --target http://127.0.0.1:PORT

Control API, the emulators' shape (helpers.emulator): POST /_emu/config {attack=, variant=},
POST /_emu/reset, GET /_emu/state -> {"answers": n, "attacked": n}. Requests are forwarded as
they came (spec/emulators/mutproxy.py's forwarding, whose mutations this replaces), so the
emulator behind still checks auth and signatures.
"""
import base64
import json
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "emulators"))
import mutproxy  # noqa: E402

WS = " \t\n" * 34000
ID_KEYS = re.compile(r"(^|_)(id|task_?id|taskid|file_?id)$", re.I)
NAME_KEYS = re.compile(r"(name|url|file|location|link)", re.I)
IDS = ["..", ".", "a/../../b", "%2F..%2F", "x" * (1 << 20)]
NAMES = ["a" * (1 << 20), "../../escaped.txt", "/etc/escaped.txt"]
NUMBERS = [float("nan"), float("inf"), float("-inf"), "1e400"]


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.attack, self.variant = None, 0
        self.answers = self.attacked = 0


def walk(value, fn, key=None):
    """A copy of a JSON value with fn(key, leaf) applied to every leaf."""
    if isinstance(value, dict):
        return {k: walk(v, fn, k) for k, v in value.items()}
    if isinstance(value, list):
        return [walk(v, fn, key) for v in value]
    return fn(key, value)


def last_segment(url, seg):
    if not isinstance(url, str):
        return url
    if url.startswith("http"):
        head, _, _ = url.rpartition("/")
        return head + "/" + seg
    return seg


def attack_json(attack, variant, doc):
    def leaf(key, v):
        if attack == "ws_strings" and isinstance(v, str):
            return WS + v + WS
        if attack == "numbers" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return NUMBERS[variant % len(NUMBERS)]
        if attack == "ids" and key and ID_KEYS.search(str(key)) and isinstance(v, (str, int)):
            return IDS[variant % len(IDS)]
        if attack in ("names", "same_names") and key and NAME_KEYS.search(str(key)) and isinstance(v, str):
            seg = "same.txt" if attack == "same_names" else NAMES[variant % len(NAMES)]
            return last_segment(v, seg)
        return v
    return walk(doc, leaf)


XML_LEAF = re.compile(rb"<([A-Za-z][\w.-]*)>([^<>]*)</\1>")


def attack_xml(attack, variant, body):
    def leaf(m):
        name, text = m.group(1), m.group(2)
        if attack == "ws_strings":
            text = WS.encode() + text + WS.encode()
        elif attack == "numbers" and re.fullmatch(rb"-?\d+(\.\d+)?", text):
            text = [b"NaN", b"inf", b"-inf", b"1e400"][variant % 4]
        elif attack == "ids" and ID_KEYS.search(name.decode()):
            text = IDS[variant % len(IDS)].encode()
        return b"<%s>%s</%s>" % (name, text, name)
    return XML_LEAF.sub(leaf, body)


def encodings(s):
    q = urllib.parse.quote(s, safe="")
    return [s, q.lower(), urllib.parse.quote_plus(s), json.dumps(s)[1:-1],
            base64.b64encode(s.encode()).decode()]


def echoed(handler, body):
    """What an echoing server would quote back: the request's credentials in their encodings."""
    found = []
    auth = handler.headers.get("Authorization") or handler.headers.get("X-API-KEY") or ""
    if auth:
        found.append(auth)
        m = re.search(r"signature=([^&,\s]+)", auth)
        if m:
            found.append(m.group(1))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
    for k, vs in query.items():
        if re.search(r"key|token|secret|sign", k, re.I):
            found.extend(vs)
    for m in re.finditer(rb"(?:key|token|secret)[\"=:\s]+\"?([\w\-.]{6,})", body or b"", re.I):
        found.append(m.group(1).decode())
    parts = []
    for s in found:
        parts.extend(encodings(s))
    return "rejected: " + " | ".join(parts)


class Handler(mutproxy.Handler):
    """mutproxy's forwarding, with an attack in place of its mutations."""

    def control(self, body):
        op = urllib.parse.urlsplit(self.path).path[len("/_emu/"):]
        st = self.state
        with st.lock:
            if op == "config":
                cfg = json.loads(body or b"{}")
                st.attack = cfg.get("attack")
                st.variant = int(cfg.get("variant", 0))
            elif op == "reset":
                st.answers = st.attacked = 0
            out = {"answers": st.answers, "attacked": st.attacked, "attack": st.attack}
        self.reply(200, [("Content-Type", "application/json")], json.dumps(out).encode())

    def answer(self, status, rheaders, rbody, body):
        st = self.state
        with st.lock:
            st.answers += 1
            attack, variant = st.attack, st.variant
            if attack:
                st.attacked += 1
        ctype = dict((k.lower(), v) for k, v in rheaders).get("content-type", "")
        if attack == "long_header":
            rheaders += [("X-Request-Id", "r" * 60000), ("X-Cos-Request-Id", "c" * 60000),
                         ("Retry-After", " " * 60000 + "1x")]
        elif attack in ("ws_strings", "numbers", "ids", "names", "same_names"):
            if "json" in ctype:
                try:
                    doc = json.loads(rbody)
                except ValueError:
                    doc = None
                if doc is not None:
                    rbody = json.dumps(attack_json(attack, variant, doc), ensure_ascii=False).encode()
            elif "xml" in ctype:
                rbody = attack_xml(attack, variant, rbody)
        elif attack == "echo_secrets":
            msg = echoed(self, body)
            status = 400
            rheaders = [("Content-Type", "application/json")]
            rbody = json.dumps({"status": 400, "code": 400, "message": msg, "msg": msg,
                                "error": {"code": "Bad", "message": msg}}).encode()
        elif attack in ("endless", "stall"):
            return self.trickle(attack, ctype)
        self.reply(status, rheaders, rbody)

    def trickle(self, attack, ctype):
        # chunked: no declared length for the client to refuse at once
        self.send_response(200)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while True:
                if attack == "endless":
                    self.wfile.write(b"200\r\n" + b" " * 512 + b"\r\n")
                    self.wfile.flush()
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            return


if __name__ == "__main__":
    mutproxy.serve(Handler, State(), "hostile vendor proxy")
