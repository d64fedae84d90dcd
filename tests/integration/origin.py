"""The origin servers of the integration tests: a threaded HTTP/1.1 server on 127.0.0.1 (TLS
when given a certificate) whose paths produce the answers the tests need: known byte
patterns, chunked and compressible bodies, cacheable responses, and misbehaviour (bytes past
a response, a body cut short of its Content-Length, a close after answering)."""

import base64
import hashlib
import io
import os
import struct
import http.server
import json
import socket
import socketserver
import ssl
import subprocess
import threading
import time

BLOCK = bytes(range(256)) * 4096  # 1 MiB of a known pattern
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def text_body(n, word=""):
    """n bytes of text that compresses well; `word` in the middle when given."""
    line = b"<p>The quick brown fox jumps over the lazy dog, again and again.</p>\n"
    body = (line * (n // len(line) + 1))[:n]
    if word:
        mid = n // 2
        body = body[:mid] + word.encode() + body[mid + len(word):]
    return body[:n]


def brotli_decompress(data):
    return subprocess.run(["brotli", "-d", "-c"], input=data, capture_output=True, check=True).stdout


def brotli_compress(data):
    return subprocess.run(["brotli", "-c"], input=data, capture_output=True, check=True).stdout




class OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="text/plain", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self):
        """Streams the request body (Content-Length or chunked); returns (length, sha256)."""
        h = hashlib.sha256()
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 20))
                    h.update(data)
                    total += len(data)
                    left -= len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    break
                h.update(data)
                total += len(data)
                left -= len(data)
        return total, h.hexdigest()

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.server.stats["requests"] += 1
        path = self.path.split("?", 1)[0]
        if path == "/hello":
            return self._send(200, ("hello from " + self.server.label).encode())
        if path == "/hello-extra":  # an answer followed by an unasked-for second response
            body = ("hello from " + self.server.label).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body) +
                             b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            return
        if path == "/hello-late-extra":  # the same, the second response a moment later
            body = ("hello from " + self.server.label).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            self.wfile.flush()
            time.sleep(0.1)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            return
        if path == "/hello-then-close":  # kept alive, then closed by the origin 0.2 s later (idle timeout)
            self._send(200, ("hello from " + self.server.label).encode())
            self.wfile.flush()
            conn = self.connection
            threading.Timer(0.2, lambda: conn.shutdown(socket.SHUT_RDWR)).start()
            return
        if path == "/hello-close":  # and the origin closes the connection after answering
            self.close_connection = True
            return self._send(200, ("hello from " + self.server.label).encode(), extra=[("Connection", "close")])
        if path.startswith("/many/"):  # a page with N stylesheets (and a blocked one with ?eicar=1)
            n = int(path.split("/")[2])
            links = "".join('<link rel="stylesheet" href="/text/300?type=text/css&i=%d">' % i for i in range(n))
            if "eicar=1" in self.path:
                links += '<link rel="stylesheet" href="/eicar">'
            return self._send(200, ("<!doctype html><html><head>%s</head><body><p id=done>page of %d</p></body></html>"
                                    % (links, n)).encode(), "text/html")
        if path == "/headers":
            return self._send(200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode(),
                              "application/json")
        if path.startswith("/bytes-extra/"):  # N bytes, then an unasked-for second response in the same write
            n = int(path.split("/")[2])
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + (BLOCK * (n // len(BLOCK) + 1))[:n] +
                             b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            return
        if path.startswith(("/cut/", "/reset/")):
            # /cut/N/M: Content-Length N, M bytes sent, then the connection closed;
            # /reset/N/M: the same, then a TCP reset instead of a close.
            n, m = int(path.split("/")[2]), int(path.split("/")[3])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write((BLOCK * (m // len(BLOCK) + 1))[:m])
            self.wfile.flush()
            self.close_connection = True
            if path.startswith("/reset/"):
                time.sleep(0.2)  # the bytes reach the proxy before the reset does
                # SO_LINGER 0: close() sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                os.close(self.connection.detach())
                self.wfile = io.BytesIO()  # what the handler still writes goes nowhere
            return
        if path.startswith("/slowbytes/"):  # /slowbytes/N/S: N bytes spread over S seconds, in 10 pieces
            n, secs = int(path.split("/")[2]), float(path.split("/")[3])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            piece = n // 10
            for i in range(10):
                self.wfile.write((BLOCK * (piece // len(BLOCK) + 2))[:piece if i < 9 else n - 9 * piece])
                self.wfile.flush()
                time.sleep(secs / 10)
            return
        if path.startswith("/bytes/"):
            n = int(path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            while n > 0:
                chunk = BLOCK[:min(n, len(BLOCK))]
                self.wfile.write(chunk)
                n -= len(chunk)
            return
        if path.startswith("/text/"):  # N bytes of compressible text; ?type= ?cc= ?ce= ?word= ?chunked=1
            from urllib.parse import parse_qs
            q = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
            body = text_body(int(path.split("/")[2]), q.get("word", [""])[0])
            extra = [("ETag", '"v1"'), ("Vary", "Origin")]
            if "cc" in q:
                extra.append(("Cache-Control", q["cc"][0]))
            if "ce" in q:
                extra.append(("Content-Encoding", q["ce"][0]))
            ctype = q.get("type", ["text/html; charset=utf-8"])[0]
            if q.get("chunked"):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(0, len(body), 7000):
                    piece = body[i:i + 7000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            return self._send(200, body, ctype, extra)
        if path.startswith("/c/"):
            return self._cacheable(path)
        if path == "/eicar":
            return self._send(200, b"prefix " + EICAR + b" suffix")
        if path == "/eicar-gzip":
            import gzip
            return self._send(200, gzip.compress(b"x" * 5000 + EICAR), extra=[("Content-Encoding", "gzip")])
        if path == "/eicar-br":
            return self._send(200, brotli_compress(b"y" * 5000 + EICAR), extra=[("Content-Encoding", "br")])
        if path == "/eicar-gzip-twice":  # gzip applied twice, said in two field lines: "gzip, gzip"
            import gzip
            return self._send(200, gzip.compress(gzip.compress(b"w" * 4000 + EICAR)),
                              extra=[("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")])
        if path == "/eicar-five-codings":  # more codings than any real response: unscannable
            return self._send(200, b"v" * 100 + EICAR, extra=[("Content-Encoding", "identity, gzip, gzip, gzip, br, gzip")])
        if path == "/zstd":  # a coding Vigil does not decode (and never asked for)
            return self._send(200, b"(zstd frame)" + EICAR, extra=[("Content-Encoding", "zstd")])
        if path == "/eicar-gzip-br":
            import gzip
            return self._send(200, brotli_compress(gzip.compress(b"z" * 3000 + EICAR)),
                              extra=[("Content-Encoding", "gzip, br")])
        if path == "/eicar-split":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"start:" + EICAR[:30], EICAR[30:] + b":end"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.1)
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/eicar-late":
            body = BLOCK + EICAR + BLOCK
            return self._send(200, body, "application/octet-stream")
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"first-", b"second-", b"third"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
                time.sleep(0.05)
            self.wfile.write(b"0\r\n\r\n")
            return
        if path == "/slow":
            parts = 10
            self.send_response(200)
            self.send_header("Content-Length", str(parts * 10))
            self.end_headers()
            for _ in range(parts):
                self.wfile.write(b"0123456789")
                self.wfile.flush()
                time.sleep(0.2)
            return
        if path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1(
                (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            # Echo raw bytes until the peer closes: enough to prove a byte stream both ways.
            while True:
                data = self.connection.recv(65536)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
            return
        return self._send(404, b"not found")

    def _cacheable(self, path):
        """For the cache tests: the response's caching fields come from the query (?cc= ?etag=
        ?lm=<seconds ago> ?vary= ?cookie=1 ?word=); the body names the path, how many times the
        origin was asked for it and the request's Accept-Language; a matching If-None-Match or
        If-Modified-Since gets 304. What each path last received is kept in `seen`."""
        import email.utils
        from urllib.parse import parse_qs
        q = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "")
        key = "c:" + path
        self.server.stats[key] = self.server.stats.get(key, 0) + 1
        self.server.seen[path] = {k.lower(): v for k, v in self.headers.items()}
        extra = []
        etag = q.get("etag", [None])[0]
        if "cc" in q:
            extra.append(("Cache-Control", q["cc"][0]))
        if etag:
            extra.append(("ETag", '"%s"' % etag))
        lm = None
        if "lm" in q:
            # Relative to when this path was first asked for, not to now: two requests that
            # straddle a second would otherwise see two different Last-Modified times (a
            # revalidation answered 200 where 304 was right; integration.cache failed so once).
            first = self.server.seen.setdefault("first:" + path, int(time.time()))
            lm = first - int(q["lm"][0])
            extra.append(("Last-Modified", email.utils.formatdate(lm, usegmt=True)))
        if "vary" in q:
            extra.append(("Vary", q["vary"][0]))
        if "cookie" in q:
            extra.append(("Set-Cookie", "session=1"))
        ims = self.headers.get("If-Modified-Since")
        if (etag and self.headers.get("If-None-Match") == '"%s"' % etag) or (
                lm is not None and ims and email.utils.parsedate_to_datetime(ims).timestamp() >= lm):
            self.send_response(304)
            for k, v in extra:
                self.send_header(k, v)
            self.send_header("X-Origin-Answer", "304 #%d" % self.server.stats[key])
            self.end_headers()
            return
        body = "%s #%d lang=%s %s" % (path, self.server.stats[key], self.headers.get("Accept-Language", "-"),
                                      q.get("word", [""])[0])
        return self._send(200, body.encode(), "text/plain", extra)

    def do_POST(self):
        self.server.stats["requests"] += 1
        if self.path.startswith("/c/"):
            self._read_body()
            return self._send(200, b"posted", "text/plain", [("Content-Location", self.path.split("?")[0] + "?alias")])
        n, digest = self._read_body()
        return self._send(200, json.dumps({"length": n, "sha256": digest}).encode(), "application/json")

    do_PUT = do_POST


class Origin:
    """A threaded HTTP/1.1 origin on 127.0.0.1; TLS when given a certificate."""

    def __init__(self, label, cert=None, key=None):
        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128  # a gateway opens many connections at once (HTTP/2 streams)

            def handle_error(self, request, client_address):
                import sys
                if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, OSError)):
                    return  # a client (the proxy) going away mid-answer is part of these tests
                super().handle_error(request, client_address)

            def get_request(self):
                sock, addr = super().get_request()
                self.stats["connections"] += 1
                return sock, addr

        self.httpd = Server(("127.0.0.1", 0), OriginHandler)
        self.httpd.label = label
        self.httpd.stats = {"requests": 0, "connections": 0}
        self.httpd.seen = {}
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def stats(self):
        return self.httpd.stats

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
