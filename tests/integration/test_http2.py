"""HTTP/2 on the client leg of the bump, through the real gateway: curl --http2 and a Python
HTTP/2 client (python3-h2) over CONNECT and real TLS with ALPN h2, against HTTP/1.1 origins.
Every stream is one transaction: the same blocks, scans, cache hits and audit records as over
HTTP/1.1. Frame-level cases (written by hand, as no h2spec is packaged) for what a hostile
client sends: malformed requests, an HPACK bomb, CONTINUATION, rapid-reset and control-frame
floods, a client that stops reading; each checks the gateway's answer, its counters and that
its memory stays bounded."""

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import unittest

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack

from harness import (BIN_DIR, VIGIL_CA, Origin, Pki, Vigil, connect_tunnel, curl, free_port, make_workdir,
                     remove_workdir, run)

RULES = os.path.join(BIN_DIR, "vigil-rules")
AUDIT = os.path.join(BIN_DIR, "vigil-audit")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
W = {}

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4
PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 1, 7, 8, 11


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["files"] = Origin("files", *pki.leaf("files", "www.files.test"))
    W["bad"] = Origin("bad", *pki.leaf("bad", "www.bad.test"))
    W["expired"] = Origin("expired", *pki.expired_leaf("expired", "expired.test"))
    W["news"] = Origin("news", *pki.leaf("news", "www.news.test"))
    db = W["db"] = os.path.join(d, "rules.db")
    for args in (["init"], ["add", "category", "malware"], ["add", "host", ".bad.test", "--category", "malware"],
                 ["add", "policy", "block-malware", "--action", "block", "--category", "malware"],
                 ["add", "category", "news"], ["add", "host", ".news.test", "--category", "news"],
                 ["add", "policy", "warn-news", "--action", "warn", "--category", "news"],
                 ["add", "signature", "magic-word", "--target", "response_body", "--pattern", "(?i)xyzzy",
                  "--action", "block"],
                 ["add", "signature", "secret-upload", "--target", "request_body", "--pattern", "TOP-SECRET-\\d+",
                  "--action", "block"]):
        run([RULES, "--db", db, "--actor", "tests"] + args)
    # An HTTP/2 origin (Debian's nghttpd), serving files; TLS with ALPN h2 only.
    htdocs = W["htdocs"] = os.path.join(d, "htdocs")
    os.makedirs(htdocs)
    with open(os.path.join(htdocs, "index.html"), "w") as f:
        f.write("hello over h2\n")
    with open(os.path.join(htdocs, "word.txt"), "w") as f:
        f.write("a file with the word xyzzy in it\n")
    W["big"] = os.urandom(3 << 20)
    with open(os.path.join(htdocs, "big.bin"), "wb") as f:
        f.write(W["big"])
    cert, key = pki.leaf("h2origin", "www.h2.test")
    W["h2port"] = free_port()
    W["nghttpd"] = subprocess.Popen(["nghttpd", "-a", "127.0.0.1", "-d", htdocs, str(W["h2port"]), key, cert],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(W["h2port"])
    W["picky"] = PickyOrigin(*pki.leaf("picky", "www.picky.test"))
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["vigil"] = start("main")
    W["strict"] = start("strict", "--set", "http2.max_concurrent_streams=20")
    W["h1only"] = start("h1only", "--set", 'tls.client_alpn=["http/1.1"]', "--set", 'tls.origin_alpn=["http/1.1"]')


def start(name, *extra):
    ports = ",".join([str(W[k].port) for k in ("files", "bad", "expired", "news")] + [str(W["h2port"]), str(W["picky"].port)])
    v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
        "--rules", W["db"], "--audit", os.path.join(W["dir"], name + "-audit.db"),
        "--set", "proxy.allow_private_destinations=true", "--set", "proxy.allowed_connect_ports=[%s]" % ports,
        ] + list(extra))
    v.audit_path = os.path.join(W["dir"], name + "-audit.db")
    return v


def tearDownModule():
    for k in ("vigil", "strict", "h1only"):
        if k in W:
            W[k].stop()
    for k in ("files", "bad", "expired", "news"):
        if k in W:
            W[k].close()
    if "picky" in W:
        W["picky"].close()
    if "nghttpd" in W:
        W["nghttpd"].terminate()
        W["nghttpd"].wait()
    if "dir" in W:
        remove_workdir(W["dir"])


def wait_listening(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def audit_rows(v, *filters, want=0, timeout=10):
    """The gateway's audit records (vigil-audit query), waiting for at least `want`."""
    deadline = time.time() + timeout
    while True:
        p = subprocess.run([AUDIT, "--db", v.audit_path, "query", "--format", "json", "--limit", "100000"] +
                           list(filters), capture_output=True, text=True, check=True)
        rows = json.loads(p.stdout)
        if len(rows) >= want or time.time() > deadline:
            return rows
        time.sleep(0.1)


def vm_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def tls_tunnel(v, host, port, alpn=("h2", "http/1.1")):
    s, resp = connect_tunnel(v.port, "%s:%d" % (host, port))
    assert b" 200 " in resp.split(b"\r\n")[0], resp
    ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
    ctx.set_alpn_protocols(list(alpn))
    t = ctx.wrap_socket(s, server_hostname=host)
    t.settimeout(15)
    return t


class Client:
    """An HTTP/2 client (python3-h2) through the gateway's bump."""

    def __init__(self, v, origin="files", host="www.files.test", window=None):
        port = W["h2port"] if origin == "h2" else W[origin].port
        self.sock = tls_tunnel(v, host, port)
        self.alpn = self.sock.selected_alpn_protocol()
        self.authority = "%s:%d" % (host, port)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_inbound_headers=False,
            validate_outbound_headers=False))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.streams = {}
        self.closed = None  # the GOAWAY's error code, or "eof"
        self.ack = window is None  # give the window back as data arrives

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "headers": {}, "data": b"", "ended": False, "reset": None}
        fields = [(":method", method), (":scheme", "https"), (":authority", self.authority), (":path", path)]
        self.conn.send_headers(sid, fields + list(headers), end_stream=body is None)
        self.flush()
        if body is not None:
            self.send_body(sid, body)
        return sid

    def send_body(self, sid, body):
        while body:
            n = min(len(body), self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if n == 0:
                self.pump()
                continue
            self.conn.send_data(sid, body[:n])
            body = body[n:]
            self.flush()
        self.conn.end_stream(sid)
        self.flush()

    def pump(self, timeout=15):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = self.closed or "eof"
            return False
        for ev in self.conn.receive_data(data):
            s = self.streams.get(getattr(ev, "stream_id", None))
            if isinstance(ev, h2.events.ResponseReceived):
                s["headers"] = dict(ev.headers)
                s["status"] = int(s["headers"][":status"])
            elif isinstance(ev, h2.events.DataReceived):
                s["data"] += ev.data
                if self.ack:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                s["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if s is not None:
                    s["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = ev.error_code
        self.flush()
        return True

    def wait(self, *sids, timeout=30):
        deadline = time.time() + timeout
        while any(not (self.streams[s]["ended"] or self.streams[s]["reset"] is not None) for s in sids):
            if time.time() > deadline or not self.pump(max(0.1, deadline - time.time())):
                break
        return [self.streams[s] for s in sids]

    def get(self, path, **kw):
        return self.wait(self.request(path, **kw))[0]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


class Raw:
    """Frames written by hand, for what a well-behaved client library will not send."""

    def __init__(self, v, host="www.files.test"):
        port = W["files"].port
        self.authority = "%s:%d" % (host, port)
        self.sock = tls_tunnel(v, host, port)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        self.dec = hpack.Decoder()
        self.buf = b""

    def request_block(self, path="/hello", method="GET", extra=()):
        return literal_block([(":method", method), (":scheme", "https"), (":authority", self.authority),
                              (":path", path)] + list(extra))

    def send(self, *frames):
        try:
            self.sock.sendall(b"".join(frames))
        except (ssl.SSLError, OSError):
            pass  # the gateway ended the connection mid-send: frames() shows how

    def frames(self, until, timeout=15):
        """Frames received until `until(frames)` is true, the peer closes, or the timeout."""
        got = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            while len(self.buf) >= 9 and len(self.buf) >= 9 + int.from_bytes(self.buf[:3], "big"):
                n = int.from_bytes(self.buf[:3], "big")
                f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7fffffff, self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                if f[0] == SETTINGS and not f[1] & 1:
                    self.send(frame(SETTINGS, 1, 0))
                if f[0] == HEADERS:
                    f = f[:3] + (self.dec.decode(f[3]),)
                got.append(f)
                if until(got):
                    return got
            try:
                self.sock.settimeout(max(0.1, deadline - time.time()))
                data = self.sock.recv(65536)
            except (ssl.SSLError, OSError):
                data = b""
            if not data:
                got.append(("eof",))
                return got
            self.buf += data
        return got


def goaway_code(frames):
    for f in frames:
        if f[0] == GOAWAY:
            return int.from_bytes(f[3][4:8], "big")
    return None


def rst_code(frames, sid):
    for f in frames:
        if f[0] == RST_STREAM and f[2] == sid:
            return int.from_bytes(f[3][:4], "big")
    return None


def status_of(frames, sid):
    for f in frames:
        if f[0] == HEADERS and f[2] == sid:
            return dict(f[3]).get(":status")
    return None


def closed(frames):
    return any(f[0] == "eof" for f in frames)


def url(path, origin="files", host="www.files.test"):
    if origin == "h2":
        return "https://www.h2.test:%d%s" % (W["h2port"], path)
    return "https://%s:%d%s" % (host, W[origin].port, path)


def curl_h2(v, *args):
    return curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"), "--http2", *args)


class CurlTest(unittest.TestCase):
    def test_curl_speaks_http2_through_the_bump_with_one_record_per_stream(self):
        v = W["vigil"]
        before = len(audit_rows(v))
        code, status, head, body, err = curl_h2(v, url("/hello"), url("/text/5000?i=2"), "-o", "/dev/null")
        self.assertEqual(code, 0, err)
        code, status, head, body, err = curl_h2(v, url("/hello"))
        self.assertEqual((code, status), (0, 200), err)
        self.assertIn("\nHTTP/2 200", head)
        self.assertEqual(body, b"hello from files")
        # A POST body (no length: chunked towards the HTTP/1.1 origin) arrives whole.
        payload = os.urandom(300_000)
        path = os.path.join(W["dir"], "upload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        code, status, head, body, err = curl_h2(v, "--data-binary", "@" + path, url("/upload"))
        self.assertEqual((code, status), (0, 200), err)
        import hashlib
        self.assertEqual(json.loads(body)["sha256"], hashlib.sha256(payload).hexdigest())
        code, status, head, body, err = curl_h2(v, "-I", url("/text/1000"))
        self.assertEqual((code, status), (0, 200), err)
        self.assertIn("content-length: 1000", head.lower())
        rows = audit_rows(v, want=before + 5)[:len(audit_rows(v)) - before]
        self.assertEqual(len(rows), 5)
        for r in rows:
            self.assertTrue(r["client_tls"].endswith(" h2"), r)
            self.assertEqual(r["status"], 200, r)
        self.assertEqual(sorted(r["method"] for r in rows), ["GET", "GET", "GET", "HEAD", "POST"])
        # The first two went over one connection, as two streams.
        self.assertEqual(len({r["conn_id"] for r in rows}), 4)

    def test_alpn_offers_only_what_tls_client_alpn_lists(self):
        code, status, head, body, err = curl_h2(W["h1only"], url("/hello"))
        self.assertEqual((code, status), (0, 200), err)
        self.assertTrue(head.startswith("HTTP/1.1 200"), head)
        c = Client(W["vigil"])
        self.assertEqual(c.alpn, "h2")
        c.close()
        s = tls_tunnel(W["vigil"], "www.files.test", W["files"].port, alpn=("http/1.1",))
        self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        s.close()


class StreamsTest(unittest.TestCase):
    def test_fifty_concurrent_streams_on_one_connection(self):
        v = W["vigil"]
        before = len(audit_rows(v))
        c = Client(v)
        sids = [c.request("/text/%d?i=%d" % (1000 + i, i)) for i in range(50)]
        results = c.wait(*sids)
        for i, r in enumerate(results):
            self.assertEqual(r["status"], 200)
            self.assertEqual(len(r["data"]), 1000 + i)
        c.close()
        rows = audit_rows(v, want=before + 50)
        new = rows[:len(rows) - before]
        self.assertEqual(len(new), 50)
        self.assertEqual(len({r["conn_id"] for r in new}), 1)
        self.assertEqual(len({r["txid"] for r in new}), 50)

    def test_streams_share_at_most_origin_connections_connections_to_an_http1_origin(self):
        v = W["strict"]  # http2.origin_connections = 8 (the default)
        made = W["files"].stats["connections"]
        c = Client(v)
        results = c.wait(*[c.request("/slow?i=%d" % i) for i in range(16)])
        c.close()
        self.assertEqual([r["status"] for r in results], [200] * 16)
        self.assertEqual({r["data"] for r in results}, {b"0123456789" * 10})
        self.assertLessEqual(W["files"].stats["connections"] - made, 8)

    def test_blocks_and_scans_on_a_stream(self):
        v = W["vigil"]
        c = Client(v)
        r = c.get("/text/2000?word=xyzzy")
        self.assertEqual(r["status"], 403)
        self.assertIn(b"magic-word", r["data"])
        r = c.get("/upload", method="POST", body=b"a" * 70000 + b"TOP-SECRET-42" + b"b" * 1000)
        self.assertEqual(r["status"], 403)
        self.assertIn(b"secret-upload", r["data"])
        # The connection goes on after blocked streams.
        self.assertEqual(c.get("/hello")["data"], b"hello from files")
        c.close()
        for rule in ("magic-word", "secret-upload"):
            rows = audit_rows(v, "--rule", rule, "--host", "www.files.test", want=1)
            self.assertEqual([(r["action"], r["status"]) for r in rows], [("block", 403)], rows)
            self.assertTrue(rows[0]["client_tls"].endswith(" h2"))

    def test_blocked_host_and_certificate_error_pages_on_streams(self):
        c = Client(W["vigil"], origin="bad", host="www.bad.test")
        r = c.get("/")
        self.assertEqual(r["status"], 403)
        self.assertIn(b"block-malware", r["data"])
        c.close()
        c = Client(W["vigil"], origin="expired", host="expired.test")
        r = c.get("/")
        self.assertEqual(r["status"], 502)
        self.assertIn(b"expired", r["data"])
        c.close()

    def test_warn_page_and_its_continue_link_on_streams(self):
        import re
        c = Client(W["vigil"], origin="news", host="www.news.test")
        r = c.get("/hello")
        self.assertIn(b"Continue to the site", r["data"])
        link = re.search(rb'id="continue" href="https://[^/"]+(/[^"]*)"', r["data"])
        self.assertTrue(link, r["data"][-800:])
        went = c.get(link.group(1).decode().replace("&amp;", "&"))
        self.assertIn(went["status"], (302, 303, 307))
        cookie = went["headers"].get("set-cookie", "").split(";")[0]
        after = c.get("/hello", headers=[("cookie", cookie)] if cookie else [])
        c.close()
        self.assertEqual((after["status"], after["data"]), (200, b"hello from news"))

    def test_cache_hits_over_http2(self):
        v = W["vigil"]
        c = Client(v)
        first = c.get("/c/h2?cc=max-age=60")
        second = c.get("/c/h2?cc=max-age=60")
        c.close()
        self.assertEqual(first["data"], second["data"])  # "#1" both times: the origin was asked once
        rows = audit_rows(v, "--url-contains", "/c/h2", want=2)
        self.assertEqual(sorted(r["cache"] for r in rows), ["HIT", "MISS"])

    def test_request_rules_of_http2_translation(self):
        v = W["vigil"]
        c = Client(v)
        # :authority and Host naming different hosts: refused before any origin is asked.
        r = c.get("/hello", headers=[("host", "www.other.test")])
        self.assertEqual(r["status"], 400)
        # Cookie crumbs arrive as one Cookie field; TE: trailers is not passed on.
        r = c.get("/headers", headers=[("cookie", "a=1"), ("cookie", "b=2"), ("te", "trailers")])
        seen = json.loads(r["data"])
        self.assertEqual(seen["cookie"], "a=1; b=2")
        self.assertNotIn("te", seen)
        self.assertEqual(seen["host"], "www.files.test:%d" % W["files"].port)
        c.close()


class PickyOrigin:
    """An origin that speaks h2 and HTTP/1.1 (python3-h2): on h2 it resets /h1-only with
    HTTP_1_1_REQUIRED and the first /refuse-once with REFUSED_STREAM; HTTP/1.1 answers "via h1"."""

    def __init__(self, cert, key):
        import threading
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.refused = set()
        self.h1_requests = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        import threading
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(raw,), daemon=True).start()

    def connection(self, raw):
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
            if s.selected_alpn_protocol() != "h2":
                data = b""
                while b"\r\n\r\n" not in data:
                    data += s.recv(4096)
                self.h1_requests += 1
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nvia h1\n")
                s.close()
                return
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
            conn.initiate_connection()
            s.sendall(conn.data_to_send())
            while True:
                data = s.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        path = dict(ev.headers)[":path"]
                        if path.startswith("/h1-only"):
                            conn.reset_stream(ev.stream_id, error_code=0xd)
                        elif path.startswith("/refuse-once") and path not in self.refused:
                            self.refused.add(path)
                            conn.reset_stream(ev.stream_id, error_code=REFUSED_STREAM)
                        else:
                            conn.send_headers(ev.stream_id, [(":status", "200"), ("content-length", "10")])
                            conn.send_data(ev.stream_id, b"h2 answer\n", end_stream=True)
                s.sendall(conn.data_to_send())
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            return

    def close(self):
        self.sock.close()


class OriginTest(unittest.TestCase):
    """HTTP/2 towards origins: nghttpd chooses h2; the Python origins speak HTTP/1.1 only."""

    def test_http1_and_http2_clients_reach_an_http2_origin(self):
        v = W["vigil"]
        for version in ("--http1.1", "--http2"):
            code, status, head, body, err = curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"), version,
                                                 url("/index.html", "h2"))
            self.assertEqual((code, status, body), (0, 200, b"hello over h2\n"), err)
        code, status, head, body, err = curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"), "--http2",
                                             "--data-binary", "x" * 100000, url("/index.html", "h2"))
        self.assertEqual((code, status), (0, 200), err)  # a body goes up in DATA frames
        rows = audit_rows(v, "--host", "www.h2.test", want=3)
        self.assertTrue(rows and all(r["origin_tls"].endswith(" h2") for r in rows), rows)
        # An HTTP/1.1-only origin: the same offer, HTTP/1.1 chosen.
        rows = audit_rows(v, "--host", "www.files.test", want=1)
        self.assertFalse(any(r["origin_tls"].endswith(" h2") for r in rows))

    def test_streams_of_many_transactions_share_one_origin_connection(self):
        v = W["vigil"]
        conns, streams = v.metric("h2_origin_connections"), v.metric("h2_origin_streams")
        clients = [Client(v, origin="h2", host="www.h2.test") for _ in range(3)]
        sids = [(c, c.request("/index.html?c=%d&i=%d" % (n, i))) for i in range(10) for n, c in enumerate(clients)]
        for c, sid in sids:
            r = c.wait(sid)[0]
            self.assertEqual((r["status"], r["data"]), (200, b"hello over h2\n"))
        big = clients[0].get("/big.bin")
        self.assertEqual(big["data"], W["big"])
        for c in clients:
            c.close()
        # One HTTP/2 connection per worker thread (the test gateway runs two), not one per request.
        self.assertLessEqual(v.metric("h2_origin_connections") - conns, 2)
        self.assertGreaterEqual(v.metric("h2_origin_streams") - streams, 31)

    def test_scans_apply_to_an_http2_origin(self):
        c = Client(W["vigil"], origin="h2", host="www.h2.test")
        r = c.get("/word.txt")
        c.close()
        self.assertEqual(r["status"], 403)
        self.assertIn(b"magic-word", r["data"])

    def test_refused_stream_is_retried_and_http_1_1_required_falls_back(self):
        v = W["vigil"]
        picky = "www.picky.test"
        base = "https://%s:%d" % (picky, W["picky"].port)
        ca = os.path.join(W["ca"], "root.pem")
        code, status, head, body, err = curl("-x", v.proxy, "--cacert", ca, base + "/plain")
        self.assertEqual((status, body), (200, b"h2 answer\n"), err)
        code, status, head, body, err = curl("-x", v.proxy, "--cacert", ca, base + "/refuse-once")
        self.assertEqual((status, body), (200, b"h2 answer\n"), err)  # the retry, on h2 again
        code, status, head, body, err = curl("-x", v.proxy, "--cacert", ca, base + "/h1-only")
        self.assertEqual((status, body), (200, b"via h1\n"), err)  # retried over HTTP/1.1
        self.assertGreaterEqual(W["picky"].h1_requests, 1)

    def test_origin_alpn_http1_only_never_offers_h2(self):
        v = W["h1only"]
        code, status, head, body, err = curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                                             url("/index.html", "h2"))
        # nghttpd speaks only h2: offered http/1.1 alone it refuses the handshake (no fallback to guess).
        self.assertEqual(status, 502, (code, head, err))
        rows = audit_rows(v, "--host", "www.h2.test", want=1)
        self.assertEqual(rows[0]["status"], 502)


class AbuseTest(unittest.TestCase):
    def test_malformed_requests_reset_the_stream_and_are_recorded(self):
        v = W["vigil"]
        malformed = v.metric("h2_malformed")
        raw = Raw(v)
        cases = [
            (1, raw.request_block(extra=[("X-Upper", "1")])),  # upper-case name
            (3, raw.request_block(extra=[("connection", "keep-alive")])),
            (5, raw.request_block(extra=[("te", "gzip")])),
            (7, literal_block([(":method", "GET"), (":scheme", "https"), (":authority", raw.authority)])),  # no :path
            (9, literal_block([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                                (":authority", raw.authority), (":path", "/ws")])),  # RFC 8441, not offered
        ]
        for sid, block in cases:
            raw.send(frame(HEADERS, END_STREAM | END_HEADERS, sid, block))
        raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 11,
                       literal_block([(":method", "CONNECT"), (":authority", "www.files.test:443")])))
        raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 13, raw.request_block("/hello")))
        got = raw.frames(lambda fs: status_of(fs, 13) is not None and all(rst_code(fs, s) for s, _ in cases))
        for sid, _ in cases:
            self.assertEqual(rst_code(got, sid), PROTOCOL_ERROR, (sid, got))
        self.assertEqual(status_of(got, 11), "405")  # a tunnel inside the tunnel: refused with a page
        self.assertEqual(status_of(got, 13), "200")  # the connection goes on
        self.assertGreaterEqual(v.metric("h2_malformed"), malformed + len(cases))
        rows = audit_rows(v, "--action", "refuse", want=1)
        self.assertTrue(any("malformed HTTP/2" in r["reason"] for r in rows), rows)
        # A frame that breaks the connection's rules (DATA on stream 0): GOAWAY(PROTOCOL_ERROR).
        raw.send(frame(DATA, 0, 0, b"x"))
        got = raw.frames(closed)
        self.assertEqual(goaway_code(got), PROTOCOL_ERROR)

    def test_hpack_bomb_gets_431_with_bounded_memory(self):
        v = W["strict"]
        before = vm_kib(v.proc.pid)
        raw = Raw(v)
        # One 4,000-byte field into the dynamic table, then 12,000 one-byte references to it: a
        # 16 KiB frame that decodes to 48 MB of header list.
        block = raw.request_block("/hello")
        name, value = b"x-bomb", b"a" * 4000
        block += b"\x40" + hpack_int(len(name)) + name + hpack_int(len(value)) + value
        block += b"\xbe" * 12000
        raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
        raw.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, raw.request_block("/hello")))
        got = raw.frames(lambda fs: status_of(fs, 1) and status_of(fs, 3))
        self.assertEqual(status_of(got, 1), "431", got)
        self.assertEqual(status_of(got, 3), "200")
        self.assertLess(vm_kib(v.proc.pid) - before, 20 * 1024)

    def test_continuation_flood_ends_the_connection(self):
        v = W["strict"]
        before = vm_kib(v.proc.pid)
        raw = Raw(v)
        block = raw.request_block("/hello", extra=[("x-pad-%d" % i, "v" * 50) for i in range(200)])
        pieces = [block[i:i + 40] for i in range(0, len(block), 40)]
        raw.send(frame(HEADERS, END_STREAM, 1, pieces[0]))
        for p in pieces[1:]:
            raw.send(frame(CONTINUATION, 0, 1, p))
        got = raw.frames(closed)
        self.assertTrue(closed(got))
        self.assertIsNone(status_of(got, 1))
        self.assertIn(goaway_code(got), (None, PROTOCOL_ERROR, ENHANCE_YOUR_CALM, 2))
        self.assertEqual(Client(v).get("/hello")["status"], 200)  # the gateway serves on
        self.assertLess(vm_kib(v.proc.pid) - before, 20 * 1024)

    def test_rapid_reset_is_bounded_by_running_transactions(self):
        v = W["strict"]  # http2.max_concurrent_streams = 20
        before = vm_kib(v.proc.pid)
        asked = W["files"].stats["requests"]
        raw = Raw(v)
        burst = []
        for i in range(400):
            sid = 1 + 2 * i
            burst.append(frame(HEADERS, END_STREAM | END_HEADERS, sid, raw.request_block("/slow")))
            burst.append(frame(RST_STREAM, 0, sid, CANCEL.to_bytes(4, "big")))
        raw.send(*burst)
        got = raw.frames(closed, timeout=10)
        time.sleep(3)  # the transactions that did start have finished (/slow takes 2 s)
        started = W["files"].stats["requests"] - asked
        # At most max_concurrent_streams at a time reach the origin (plus those that finished
        # while the burst was read), never the 400 the client opened.
        self.assertLessEqual(started, 60, started)
        self.assertTrue(v.metric("h2_refused_streams") > 0 or goaway_code(got) is not None, got[-3:])
        self.assertEqual(Client(v).get("/hello")["status"], 200)
        self.assertLess(vm_kib(v.proc.pid) - before, 20 * 1024)

    def test_ping_and_settings_floods_end_the_connection(self):
        v = W["strict"]
        before = vm_kib(v.proc.pid)
        for ftype, payload in ((PING, b"12345678"), (SETTINGS, b"")):
            abuse = v.metric("h2_abuse")
            raw = Raw(v)
            raw.send(*[frame(ftype, 0, 0, payload)] * 5000)
            got = raw.frames(closed, timeout=15)
            self.assertTrue(closed(got))
            self.assertEqual(goaway_code(got), ENHANCE_YOUR_CALM, got[-3:])
            self.assertGreater(v.metric("h2_abuse"), abuse)
        self.assertEqual(Client(v).get("/hello")["status"], 200)
        self.assertLess(vm_kib(v.proc.pid) - before, 20 * 1024)

    def test_a_client_that_stops_reading_holds_bounded_memory(self):
        v = W["strict"]
        before = vm_kib(v.proc.pid)
        c = Client(v, window=65535)  # never gives window back
        sid = c.request("/bytes/%d" % (200 << 20))
        deadline = time.time() + 4
        while time.time() < deadline:
            c.pump(0.5)
        got = len(c.streams[sid]["data"])
        self.assertLessEqual(got, 65535)
        self.assertLess(vm_kib(v.proc.pid) - before, 16 * 1024)
        c.close()
        self.assertEqual(Client(v).get("/hello")["status"], 200)

    def test_an_upload_is_held_only_up_to_the_window(self):
        v = W["strict"]
        before = vm_kib(v.proc.pid)
        c = Client(v)
        body = os.urandom(8 << 20)
        r = c.get("/upload", method="POST", body=body, headers=[("content-length", str(len(body)))])
        self.assertEqual(r["status"], 200)
        self.assertEqual(json.loads(r["data"])["length"], len(body))
        self.assertLess(vm_kib(v.proc.pid) - before, 16 * 1024)
        c.close()


def hpack_int(n, prefix=0):
    """A string length in HPACK's integer form (7-bit prefix, no Huffman); `prefix`: the high bit."""
    if n < 127:
        return bytes([prefix | n])
    out, n = bytes([prefix | 127]), n - 127
    while n >= 128:
        out += bytes([(n & 0x7f) | 0x80])
        n >>= 7
    return out + bytes([n])


def literal_block(fields):
    """A header block of literals that touch no dynamic table (RFC 7541 §6.2.2), names as given."""
    out = b""
    for name, value in fields:
        n, v = name.encode(), value.encode()
        out += b"\x00" + hpack_int(len(n)) + n + hpack_int(len(v)) + v
    return out


@unittest.skipUnless(CHROMIUM and shutil.which("certutil"), "chromium and certutil are installed by `make deps`")
class BrowserTest(unittest.TestCase):
    def test_browser_page_with_many_resources_uses_one_http2_connection(self):
        v = W["vigil"]
        home = os.path.join(W["dir"], "home")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb, exist_ok=True)
        run(["certutil", "-N", "-d", "sql:" + nssdb, "--empty-password"])
        run(["certutil", "-A", "-d", "sql:" + nssdb, "-t", "C,,", "-n", "Vigil test root", "-i",
             os.path.join(W["ca"], "root.pem")])
        netlog = os.path.join(W["dir"], "netlog.json")
        before = len(audit_rows(v))
        p = subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + os.path.join(home, "p"),
                            "--proxy-server=" + v.proxy, "--log-net-log=" + netlog, "--dump-dom",
                            url("/many/40?eicar=1")], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, HOME=home))
        self.assertIn("page of 40", p.stdout, p.stderr[-2000:])
        rows = audit_rows(v, want=before + 42)
        new = [r for r in rows[:len(rows) - before] if "/many/" in r["url"] or "/text/300" in r["url"] or
               r["url"].endswith("/eicar")]
        self.assertEqual(len(new), 42, [r["url"] for r in new])
        self.assertTrue(all(r["client_tls"].endswith(" h2") for r in new))
        self.assertEqual(len({r["conn_id"] for r in new}), 1)  # one HTTP/2 connection for the origin
        with open(netlog) as f:
            log = f.read()
        self.assertIn("HTTP2_SESSION", log)
