"""Test harness for Vigil's integration tests: a test PKI made with the openssl CLI, local
origin servers (TLS and plain), and the real vigil binary started on a free port."""

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time

BIN_DIR = os.environ.get("VIGIL_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
VIGIL = os.path.join(BIN_DIR, "vigil")
VIGIL_CA = os.path.join(BIN_DIR, "vigil-ca")

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


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Pki:
    """A 'public' test CA (trusted by vigil via --extra-ca) and origin certificates, good and bad."""

    def __init__(self, root):
        self.dir = os.path.join(root, "pki")
        os.makedirs(self.dir)
        self.ca_pem, self.ca_key = self._self_signed_ca("publicca", "Test Public Root")
        self.other_ca_pem, self.other_ca_key = self._self_signed_ca("otherca", "Untrusted Root")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _self_signed_ca(self, name, cn):
        key, pem = self.path(name + ".key"), self.path(name + ".pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", pem, "-days", "30", "-subj", "/O=Vigil tests/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return pem, key

    def _csr(self, name, cn):
        key, csr = self.path(name + ".key"), self.path(name + ".csr")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
        return key, csr

    def _ext(self, name, san):
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=" + san + "\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        return ext

    def leaf(self, name, san_host, ca=None, days=10):
        """A leaf for san_host signed by the public CA (or `ca` = (pem, key))."""
        ca_pem, ca_key = ca or (self.ca_pem, self.ca_key)
        key, csr = self._csr(name, san_host)
        pem = self.path(name + ".pem")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
             "-out", pem, "-days", str(days), "-extfile", self._ext(name, "DNS:" + san_host)])
        return pem, key

    def expired_leaf(self, name, san_host):
        """A leaf whose validity ended in the past (openssl ca takes explicit dates)."""
        key, csr = self._csr(name, san_host)
        pem = self.path(name + ".pem")
        cadir = self.path("cadb")
        os.makedirs(os.path.join(cadir, "new"), exist_ok=True)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        cnf = self.path("ca.cnf")
        with open(cnf, "w") as f:
            f.write(f"[ca]\ndefault_ca=d\n[d]\ndatabase={cadir}/index.txt\nnew_certs_dir={cadir}/new\n"
                    f"serial={cadir}/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n"
                    "[p]\ncommonName=supplied\n")
        run(["openssl", "ca", "-batch", "-config", cnf, "-cert", self.ca_pem, "-keyfile", self.ca_key,
             "-in", csr, "-out", pem, "-notext", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
             "-extfile", self._ext(name, "DNS:" + san_host)])
        return pem, key

    def self_signed_leaf(self, name, san_host):
        key, pem = self.path(name + ".key"), self.path(name + ".pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", pem, "-days", "10", "-subj", "/CN=" + san_host,
             "-addext", "subjectAltName=DNS:" + san_host, "-addext", "extendedKeyUsage=serverAuth"])
        return pem, key


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
        if path == "/headers":
            return self._send(200, json.dumps({k.lower(): v for k, v in self.headers.items()}).encode(),
                              "application/json")
        if path.startswith("/bytes-extra/"):  # N bytes, then an unasked-for second response in the same write
            n = int(path.split("/")[2])
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n + (BLOCK * (n // len(BLOCK) + 1))[:n] +
                             b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!")
            return
        if path.startswith("/cut/"):  # /cut/N/M: Content-Length N, M bytes sent, then the connection closed
            n, m = int(path.split("/")[2]), int(path.split("/")[3])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write((BLOCK * (m // len(BLOCK) + 1))[:m])
            self.wfile.flush()
            self.close_connection = True
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
            lm = int(time.time()) - int(q["lm"][0])
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


class ParentProxy:
    """A small forward proxy on 127.0.0.1 to stand for a site's parent proxy: CONNECT tunnels
    and absolute-form requests (answered with Connection: close), every name reached at
    127.0.0.1; counts what it served. kill() makes it vanish: listener and connections closed."""

    def __init__(self, label, refuse_connect=False):
        self.label = label
        self.refuse_connect = refuse_connect  # answers every CONNECT with 403
        self.counts = {"connect": 0, "http": 0}
        self.targets = []
        self.lock = threading.Lock()
        self.conns = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_head(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        return head.decode("latin-1"), rest

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, c):
        try:
            head, rest = self._read_head(c)
            if head is None:
                return
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            with self.lock:
                self.targets.append(method + " " + target)
            if method == "CONNECT" and self.refuse_connect:
                c.sendall(b"HTTP/1.1 403 Forbidden by policy\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                up = socket.create_connection(("127.0.0.1", port))
                with self.lock:
                    self.counts["connect"] += 1
                    self.conns.add(up)
                c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    up.sendall(rest)
                threading.Thread(target=self._pipe, args=(up, c), daemon=True).start()
                self._pipe(c, up)
                return
            if not target.startswith("http://"):
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            authority, path = (target[7:].split("/", 1) + [""])[:2]
            port = int(authority.rsplit(":", 1)[1]) if ":" in authority else 80
            up = socket.create_connection(("127.0.0.1", port))
            with self.lock:
                self.counts["http"] += 1
                self.conns.add(up)
            fields = [l for l in lines[1:] if not l.lower().startswith(("connection:", "proxy-connection:"))]
            up.sendall(("%s /%s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n" %
                        (method, path, "\r\n".join(fields))).encode("latin-1") + rest)
            threading.Thread(target=self._pipe, args=(c, up), daemon=True).start()  # the rest of a body
            rhead, rrest = self._read_head(up)
            if rhead is None:
                return
            rlines = [l for l in rhead.split("\r\n") if not l.lower().startswith("connection:")]
            c.sendall(("\r\n".join(rlines) + "\r\nConnection: close\r\n\r\n").encode("latin-1") + rrest)
            self._pipe(up, c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def kill(self):
        self.sock.close()
        with self.lock:
            for x in list(self.conns):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                    x.close()
                except OSError:
                    pass


class Recorder:
    """A TCP server that records every byte it receives and never answers: proves what reached it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        conn.settimeout(5)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.received += data
        except OSError:
            pass
        conn.close()

    def close(self):
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Vigil:
    """The real gateway binary, on a free port, with its own CA directory."""

    instances = 0

    def __init__(self, workdir, ca_dir, extra_args=(), hosts=None, extra_ca=None, expect_start=True):
        self.workdir = workdir
        Vigil.instances += 1
        n = Vigil.instances
        self.ready = os.path.join(workdir, "ready-%d.json" % n)
        self.stats_file = os.path.join(workdir, "stats-%d.json" % n)
        self.log_path = os.path.join(workdir, "vigil-%d.log" % n)
        args = [VIGIL, "--listen", "127.0.0.1:0", "--ca-dir", ca_dir, "--threads", "2",
                "--ready-file", self.ready, "--stats-file", self.stats_file, "--set", 'admin.listen="127.0.0.1:0"']
        if hosts:
            args += ["--hosts-file", hosts]
        if extra_ca:
            args += ["--extra-ca", extra_ca]
        args += list(extra_args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        if not expect_start:
            return
        deadline = time.time() + 15
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError("vigil exited at start: " + self.read_log())
            if time.time() > deadline:
                raise RuntimeError("vigil did not start: " + self.read_log())
            time.sleep(0.02)
        with open(self.ready) as f:
            info = json.load(f)
        self.port = int(info["listen"].rsplit(":", 1)[1])
        self.admin_port = int(info.get("admin_port", 0))
        self.proxy = "http://127.0.0.1:%d" % self.port

    def metric(self, name):
        """The value of vigil_<name>_total on the admin endpoint's /metrics."""
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=10) as r:
            text = r.read().decode()
        found = re.search(r"^vigil_%s_total (\S+)$" % name, text, re.M)
        if not found:
            raise AssertionError("no vigil_%s_total on /metrics" % name)
        return int(float(found.group(1)))

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals vigil and returns (exit code, counters)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        counters = {}
        if os.path.exists(self.stats_file):
            with open(self.stats_file) as f:
                counters = json.load(f)
        return code, counters


def curl(*args, timeout=60):
    """Runs curl; returns (exit code, status, headers, body bytes)."""
    with tempfile.TemporaryDirectory() as d:
        body, head = os.path.join(d, "body"), os.path.join(d, "head")
        p = subprocess.run(["curl", "-sS", "-o", body, "-D", head, "-w", "%{http_code}", "--max-time",
                            str(timeout)] + list(args), capture_output=True, text=True)
        data, headers = b"", ""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        if os.path.exists(head):
            with open(head) as f:
                headers = f.read()
        return p.returncode, int(p.stdout or 0), headers, data, p.stderr


def read_all(sock, timeout=5):
    """Everything the peer sends until it closes, resets or goes quiet for `timeout` seconds."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError, OSError):
        pass
    return out


def raw_exchange(port, data, read_timeout=5):
    """Sends raw bytes to the proxy and returns everything it answers before closing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    s.sendall(data)
    out = read_all(s, read_timeout)
    s.close()
    return out


def connect_tunnel(port, target, timeout=10):
    """Opens a CONNECT tunnel through the proxy; returns the socket after '200'."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    return s, resp


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def make_workdir():
    d = tempfile.mkdtemp(prefix="vigil-it-")
    return d


def remove_workdir(d):
    if os.environ.get("VIGIL_KEEP_WORKDIR"):
        print("kept test directory", d)
        return
    shutil.rmtree(d, ignore_errors=True)
