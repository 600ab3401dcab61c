"""A mutating proxy for fuzzing providers: it forwards every request to a vendor emulator and, with
a configured probability, hands the client a damaged version of the emulator's answer, so a
provider meets the vendor answers nobody documents: a field of another type, a missing key, a
state number out of range, an XML element emptied, repeated or nested, an error status, a
truncated or garbled body.

    python3 spec/emulators/mutproxy.py --port 0 --target http://127.0.0.1:PORT

Control API (the emulators' shape, so helpers.emulator drives it; never forwarded):
  POST /_emu/config {seed, rate}   -> seed of the mutations, probability per answer (0..1)
  POST /_emu/reset                 -> counters to zero
  GET  /_emu/state                 -> {"answers": n, "mutated": n, "kinds": {kind: n}}
Requests are forwarded as they came (method, path, query, headers including Host, body), so the
emulator behind still checks auth and q-sign signatures. Mutations are deterministic in (seed,
answer number).
"""
import argparse
import copy
import http.client
import json
import os
import random
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emu import watch_parent  # noqa: E402

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}
ODD = [None, True, False, 0, -1, 1.5, 10 ** 20, "", "x", "\u4e2d\ufffd", [], {}, [[[]]],
       {"a": {"b": None}}, "https://example.invalid/x", "-1", "NaN",
       # what a hostile answer adds: non-finite and huge numbers, dot segments, long runs
       float("nan"), float("inf"), float("-inf"), 1e308, "..", "a/../b", " " * 20000, "x" * 20000]


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.seed, self.rate = 1, 0.5
        self.reset()

    def reset(self):
        self.answers, self.mutated, self.kinds = 0, 0, {}

    def next_rng(self):
        with self.lock:
            self.answers += 1
            return random.Random(self.seed * 1000003 + self.answers)

    def count(self, kind):
        with self.lock:
            self.mutated += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1


def nodes(value, path=()):
    """Every (container, key) pair in a JSON value, depth first."""
    out = []
    if isinstance(value, dict):
        for k in list(value):
            out.append((value, k))
            out.extend(nodes(value[k]))
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append((value, i))
            out.extend(nodes(value[i]))
    return out


def odd(rng):
    # A fresh copy: one shared [] put in two places could end up holding itself.
    return copy.deepcopy(rng.choice(ODD))


def mutate_json(rng, doc):
    spots = nodes(doc)
    if not spots:
        return odd(rng), "json-root"
    for _ in range(rng.randint(1, 3)):
        spots = nodes(doc)
        if not spots:
            break
        parent, key = rng.choice(spots)
        op = rng.randint(1, 4)
        if op == 1 and isinstance(parent, dict):
            del parent[key]
        elif op == 2 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = rng.choice([-1, 0, 1, 2, 3, 4, 5, 99, 10 ** 12])
        else:
            parent[key] = odd(rng)
    return doc, "json"


LEAF = re.compile(rb"<([A-Za-z][\w.-]*)>([^<>]*)</\1>")
XML_TEXT = [b"", b"x", b"-1", b"NaN", b"1e999", b"\xe4\xb8\xad", b"0", b"99999999999999999999",
            b"inf", b"..", b" " * 20000]


def mutate_xml(rng, body):
    """Edits 1..3 leaf elements: new text, removed, repeated, or its text wrapped in a child."""
    for _ in range(rng.randint(1, 3)):
        leaves = list(LEAF.finditer(body))
        if not leaves:
            break
        m = rng.choice(leaves)
        name, text = m.group(1), m.group(2)
        op = rng.randint(1, 4)
        if op == 1:
            new = b"<%s>%s</%s>" % (name, rng.choice(XML_TEXT), name)
        elif op == 2:
            new = b""
        elif op == 3:
            new = m.group(0) * 2
        else:
            new = b"<%s><Odd>%s</Odd></%s>" % (name, text, name)
        body = body[:m.start()] + new + body[m.end():]
    return body, "xml"


def mutate_bytes(rng, body):
    b = bytearray(body)
    op = rng.randint(1, 3)
    if op == 1 and b:
        del b[rng.randrange(len(b)):]
        return bytes(b), "truncated"
    if op == 2 and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b), "garbled"
    return b"<html>502 Bad Gateway</html>", "html"


def mutate(rng, status, ctype, body):
    """Returns status, body, kind."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice([400, 401, 403, 404, 429, 500, 502, 503]), body, "status"
    if roll < 0.75 and "json" in ctype:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if doc is not None:
            doc, kind = mutate_json(rng, doc)
            return status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), kind
    if roll < 0.75 and "xml" in ctype:
        body, kind = mutate_xml(rng, body)
        return status, body, kind
    body, kind = mutate_bytes(rng, body)
    return status, body, kind


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    target = None

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def control(self, body):
        op = urllib.parse.urlsplit(self.path).path[len("/_emu/"):]
        st = self.state
        with st.lock:
            if op == "config":
                cfg = json.loads(body or b"{}")
                st.seed = int(cfg.get("seed", st.seed))
                st.rate = float(cfg.get("rate", st.rate))
            elif op == "reset":
                st.reset()
            out = {"answers": st.answers, "mutated": st.mutated, "kinds": st.kinds}
        self.reply(200, [("Content-Type", "application/json")], json.dumps(out).encode())

    def forward(self):
        body = self.body()
        if self.path.startswith("/_emu/"):
            return self.control(body)
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            self.reply(501, [], b"mutproxy: chunked request bodies are not supported")
            self.close_connection = True
            return
        status, rheaders, rbody = self.fetch(body)
        self.answer(status, rheaders, rbody, body)

    def fetch(self, body):
        """The emulator's answer to this request, forwarded as it came: status, headers, body."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            res = conn.getresponse()
            return res.status, [(k, v) for k, v in res.getheaders() if k.lower() not in HOP], res.read()
        finally:
            conn.close()

    def answer(self, status, rheaders, rbody, body):
        """What the client gets instead (a subclass's attack; here, a mutation at `rate`)."""
        rng = self.state.next_rng()
        if rng.random() < self.state.rate:
            ctype = dict((k.lower(), v) for k, v in rheaders).get("content-type", "")
            status, rbody, kind = mutate(rng, status, ctype, rbody)
            self.state.count(kind)
        self.reply(status, rheaders, rbody)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hung up on a damaged answer is part of the game, not a proxy failure.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def serve(handler_class, state, description):
    """Parses --port and --target, listens on 127.0.0.1, prints the READY line, serves."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--target", required=True)
    args = parser.parse_args()
    handler = type("BoundHandler", (handler_class,), {"state": state,
                                                      "target": urllib.parse.urlsplit(args.target)})
    server = Server(("127.0.0.1", args.port), handler)
    threading.Thread(target=watch_parent, daemon=True).start()
    sys.stdout.write("READY %d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.2)


def main():
    serve(Handler, State(), "mutating proxy")


if __name__ == "__main__":
    main()
