"""The shared machinery of every vendor emulator: a real HTTP/1.1 server on 127.0.0.1 with
keep-alive, a request log, fault injection and a control API, so each vendor file only states the
vendor's contract.

An emulator is started by the specs as `python3 spec/emulators/NAME.py [--port 0]`; it prints
`READY <port> <pid>` on stdout once it listens, and exits when its parent dies.

Control API (JSON, under /_emu/, never logged):
  GET  /_emu/log               -> [entry, ...]   every request the vendor routes saw
  POST /_emu/reset             -> clears log, faults and the app's state
  POST /_emu/fault   {fault}   -> queues a fault (see Fault below)
  POST /_emu/config  {k: v}    -> app-specific settings (Emulator.config)
  GET  /_emu/state             -> app-specific state (Emulator.state_snapshot)
"""
import argparse
import base64
import email.parser
import email.policy
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Request:
    """What a route sees: the parsed request, body already read."""

    def __init__(self, handler, body):
        self.handler = handler
        self.method = handler.command
        parsed = urllib.parse.urlsplit(handler.path)
        self.raw_path = parsed.path
        self.path = urllib.parse.unquote(parsed.path)
        self.raw_query = parsed.query
        # keep_blank_values: `k=` is a present-but-empty parameter, which vendors distinguish.
        # parse_qsl turns '+' into a space (form decoding): emulators that sign or compare the
        # query byte for byte (COS) must read raw_query instead.
        self.query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        self.query_list = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.header_list = list(handler.headers.items())
        self.body = body
        self._form = None
        # When the request arrived (its head was read), not when its thread got round to it:
        # under load the threads wait for the GIL, and a vendor's gateway counts arrivals.
        self.arrived, self.arrived_mono = handler.arrived, handler.arrived_mono   # (dispatch)

    def form(self):
        """multipart/form-data parsed by the standard library: {name: [Part, ...]}.
        Returns None when the body is not multipart or does not parse."""
        if self._form is not None:
            return self._form
        ctype = self.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data") or "boundary=" not in ctype:
            return None
        raw = b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + (self.body or b"")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        if not msg.is_multipart() or msg.defects:
            return None
        form = {}
        for part in msg.iter_parts():
            disp = part.get("Content-Disposition", "")
            if not disp.startswith("form-data"):
                return None
            name = part.get_param("name", header="content-disposition")
            if name is None:
                return None
            data = part.get_payload(decode=True) or b""
            form.setdefault(name, []).append(Part(name, part.get_filename(),
                                                   part.get_content_type() if part.get("Content-Type") else None,
                                                   data))
        self._form = form
        return form


class Part:
    def __init__(self, name, filename, content_type, data):
        self.name, self.filename, self.content_type, self.data = name, filename, content_type, data

    def text(self):
        return self.data.decode("utf-8")

    def describe(self):
        d = {"size": len(self.data)}
        if self.filename is not None:
            d["filename"] = self.filename
            d["content_type"] = self.content_type
        else:
            d["value"] = self.data.decode("utf-8", "replace") if len(self.data) <= 4096 else None
        return d


class Response:
    def __init__(self, status=200, body=b"", headers=None, content_type=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type

    @staticmethod
    def json(obj, status=200, headers=None):
        return Response(status, json.dumps(obj, ensure_ascii=False), headers, "application/json")

    @staticmethod
    def text(s, status=200, headers=None, content_type="text/plain; charset=utf-8"):
        return Response(status, s, headers, content_type)


class Emulator:
    """Subclass and register routes with `route(method, prefix_or_callable, fn)`.

    `fn(req) -> Response`. Routes match in registration order; a string pattern matches the path
    exactly or, if it ends with '/', as a prefix."""

    name = "emulator"

    def __init__(self):
        self.lock = threading.RLock()
        self.routes = []
        self.log = []
        self.faults = []
        self.settings = {}
        self.base_url = None
        self.reset_state()

    # -- to override -------------------------------------------------------------------------
    def reset_state(self):
        pass

    def config(self, settings):
        self.settings.update(settings)

    def state_snapshot(self):
        return {}

    # -- routing -----------------------------------------------------------------------------
    def route(self, method, pattern, fn):
        self.routes.append((method, pattern, fn))

    def find_route(self, req):
        for method, pattern, fn in self.routes:
            if method != "*" and method != req.method:
                continue
            if callable(pattern):
                if pattern(req.path):
                    return fn
            elif pattern.endswith("/") and req.path.startswith(pattern) and len(req.path) > len(pattern):
                return fn
            elif req.path == pattern:
                return fn
        return None

    def not_found(self, req):
        return Response.json({"status": 404, "message": "no such route"}, 404)

    # -- faults ------------------------------------------------------------------------------
    def take_fault(self, req):
        """A fault: {action, path (prefix, optional), method (optional), times (default 1),
        status, body, headers, delay (s), skip (let N matching requests pass first)}.
        Actions: status, drop, reset, slow, truncate, malformed, slow_body, raw (the exact bytes
        of `body`, or of base64 `body_b64`, written as the whole answer, then the connection
        closed: a broken status line or headers no well-behaved server library would produce)."""
        with self.lock:
            for f in self.faults:
                if f.get("method") and f["method"] != req.method:
                    continue
                if f.get("path") and not req.path.startswith(f["path"]):
                    continue
                if f.get("skip", 0) > 0:
                    f["skip"] -= 1
                    continue
                f["times"] = f.get("times", 1) - 1
                if f["times"] <= 0:
                    self.faults.remove(f)
                return dict(f)
        return None

    def record(self, req, fault):
        form = req.form()
        entry = {
            "t": req.arrived,
            "method": req.method,
            "path": req.path,
            "raw_path": req.raw_path,
            "query": req.query,
            "raw_query": req.raw_query,
            "headers": req.headers,
            "body_size": len(req.body or b""),
            "fault": fault and fault.get("action"),
            "peer_port": req.handler.client_address[1],   # (one per connection: reuse shows)
        }
        if form is not None:
            entry["form"] = {k: [p.describe() for p in v] for k, v in form.items()}
        ctype = req.headers.get("content-type", "")
        if form is None and req.body and len(req.body) <= 65536 and (
                "json" in ctype or "urlencoded" in ctype or ctype.startswith("text/")):
            entry["body"] = req.body.decode("utf-8", "replace")
        with self.lock:
            self.log.append(entry)

    # -- control -----------------------------------------------------------------------------
    def control(self, req):
        op = req.path[len("/_emu/"):]
        payload = json.loads(req.body.decode("utf-8")) if req.body else {}
        with self.lock:
            if op == "log":
                return Response.json(self.log)
            if op == "reset":
                self.log.clear()
                self.faults.clear()
                self.settings = {}
                self.reset_state()
                return Response.json({"ok": True})
            if op == "fault":
                self.faults.append(payload)
                return Response.json({"ok": True})
            if op == "config":
                self.config(payload)
                return Response.json({"ok": True})
            if op == "state":
                return Response.json(self.state_snapshot())
        return Response.json({"error": "unknown control op " + op}, 404)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ocr-emulator/1"
    disable_nagle_algorithm = True  # small answers must not wait ~40 ms for a delayed ACK
    emulator = None  # set by serve()
    max_body = 512 * 1024 * 1024

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body:
            raise ValueError("body too large for the emulator")
        return self.rfile.read(length) if length else b""

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ConnectionError, BrokenPipeError, socket.timeout):
            self.close_connection = True

    def dispatch(self):
        self.arrived, self.arrived_mono = time.time(), time.monotonic()
        emu = self.emulator
        if self.path.startswith("/_emu/"):
            body = self.read_body()
            return self.send(emu.control(Request(self, body)))
        streaming = getattr(emu, "streaming_route", None)
        if streaming:
            fn = streaming(self)
            if fn:
                return fn(self)
        body = self.read_body()
        req = Request(self, body)
        fault = emu.take_fault(req)
        emu.record(req, fault)
        if fault:
            action = fault.get("action")
            if action == "slow":
                time.sleep(float(fault.get("delay", 1)))
            elif action == "drop":
                return self.drop()
            elif action == "reset":
                return self.drop(rst=True)
            elif action == "status":
                return self.send(Response(int(fault.get("status", 500)),
                                          fault.get("body", ""),
                                          fault.get("headers"),
                                          fault.get("content_type", "application/json")))
            elif action == "raw":
                raw = fault.get("body", "").encode("latin-1")
                if "body_b64" in fault:
                    raw = base64.b64decode(fault["body_b64"])
                self.wfile.write(raw)
                self.wfile.flush()
                return self.drop()
            elif action == "malformed":
                return self.send(Response(int(fault.get("status", 200)),
                                          fault.get("body", '{"status": 200, "data": {'),
                                          None, fault.get("content_type", "application/json")))
        fn = emu.find_route(req)
        res = fn(req) if fn else emu.not_found(req)
        if fault and fault.get("action") == "truncate":
            return self.send(res, truncate=True)
        if fault and fault.get("action") == "slow_body":
            return self.send(res, body_delay=float(fault.get("delay", 1)))
        return self.send(res)

    def drop(self, rst=False):
        if rst:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, res, truncate=False, body_delay=0):
        self.send_response(res.status)
        for k, v in res.headers.items():
            self.send_header(k, v)
        if res.status == 204 or res.status < 200:  # RFC 9110: no body, no Content-Length
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(res.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self.wfile.write(res.body[: len(res.body) // 2])
            self.wfile.flush()
            return self.drop()
        if body_delay:
            self.wfile.flush()
            time.sleep(body_delay)
        self.wfile.write(res.body)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True


def watch_parent():
    """Exit when the process that started us goes away, so no emulator outlives its specs."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def serve(emulator, argv=None):
    parser = argparse.ArgumentParser(description=emulator.name + " emulator")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the certificate's PEM private key")
    args = parser.parse_args(argv)
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    server = Server((args.host, args.port), handler)
    port = server.server_address[1]
    scheme, ready = "http", "READY %d %d" % (port, os.getpid())
    if args.tls_cert:
        # The handshake runs in each connection's own thread (do_handshake_on_connect=False
        # on the listening socket), so a client that stalls in TLS holds up nobody else.
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
        scheme = "https"
        # The specs' control client speaks plain HTTP: the same emulator answers it on a
        # second, plain port (named third on the READY line).
        control = Server((args.host, 0), handler)
        threading.Thread(target=control.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()
        ready += " %d" % control.server_address[1]
    emulator.base_url = "%s://%s:%d" % (scheme, args.host, port)
    threading.Thread(target=watch_parent, daemon=True).start()
    sys.stdout.write(ready + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
