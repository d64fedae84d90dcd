"""Request smuggling and framing corpus: more than 150 malformed or ambiguous requests, sent to
the real gateway as plain absolute-form requests and inside a bumped TLS tunnel. Each must be
refused (4xx, or the connection closed) and the origin — a recorder that keeps every byte
it receives — must receive nothing."""

import os
import socket
import ssl
import threading
import time
import unittest

from harness import (Origin, Pki, Recorder, Vigil, VIGIL_CA, connect_tunnel, make_workdir, read_all, remove_workdir,
                     run)

W = {}


class TlsRecorder(Recorder):
    """A recorder behind TLS: counts decrypted bytes only."""

    def __init__(self, cert, key):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        super().__init__()

    def _drain(self, conn):
        try:
            conn = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        super()._drain(conn)


def te_cases():
    values = ["chunked, identity", "identity, chunked", "identity", "chunked, chunked", '"chunked"', "chunk",
              "chunked;q=1", "x-chunked", "gzip, chunked", "chunked, gzip", "CHUNKED, identity", "\x0bchunked",
              "chunked\x0b", "ch unked", "chunked,", ",chunked", "", "identity;q=1", "cow", "chunked\x00"]
    out = []
    for v in values:
        out.append("POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: %s\r\n\r\n0\r\n\r\n" % v)
        out.append("POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\nTransfer-Encoding: %s\r\n\r\n0\r\n\r\n" % v)
    out += [
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-\x00Encoding: chunked\r\n\r\n0\r\n\r\n",
    ]
    return out


def cl_cases():
    values = ["+4", "-4", "4 4", "0x4", "4.0", "4, 4", "04x", "", "99999999999999999999999", "4;", "abcd", "4\x00"]
    out = ["POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: %s\r\n\r\nabcd" % v for v in values]
    out += [
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length : 4\r\n\r\nabcd",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent Length: 4\r\n\r\nabcd",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nConnection: content-length\r\n\r\nabcd",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nConnection: close, Transfer-Encoding\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nConnection: host\r\n\r\n",
    ]
    return out


def chunk_cases():
    head = "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n"
    bodies = ["zz\r\nabc\r\n0\r\n\r\n", "-1\r\nabc\r\n0\r\n\r\n", "0x4\r\nabcd\r\n0\r\n\r\n",
              "1ffffffffffffffff\r\nabcd\r\n0\r\n\r\n", "4\r\nabcdX\r\n0\r\n\r\n", "4;\x00x\r\nabcd\r\n0\r\n\r\n",
              "4\rabcd\r\n0\r\n\r\n", "4\nabcd\n0\n\n", "\r\n4\r\nabcd\r\n0\r\n\r\n", "4 4\r\nabcd\r\n0\r\n\r\n",
              "g\r\n", "4\r\nabcd\r\n0\r\nX: y\r\n\x00\r\n\r\n"]
    return [head + b for b in bodies]


def head_cases():
    return [
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Folded: a\r\n b\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Folded: a\r\n\tb\r\n\r\n",
        "GET {T} HTTP/1.1\r\n Host: {H}\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX: a\rb\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\nX: b\r\n\r\n",
        "GET {T} HTTP/1.1\nHost: {H}\n\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX: a\r\r\n\r\n",
        "GET {T} HTTP/1.1\rHost: {H}\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX Y: z\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX-Y : z\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\n: empty-name\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX\x00Y: z\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX(Y): z\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX: \x7f\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nHost: other.test\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: other.test\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: user@{H}\r\n\r\n",
        "GET {T}%0d%0aX:%20y HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET {T}%0A HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET {T}%00 HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "get {T} HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "G\x00ET {T} HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET  {T} HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET {T} HTTP/1.1 extra\r\nHost: {H}\r\n\r\n",
        "GET {T}\tHTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET {T} HTTP/9.9\r\nHost: {H}\r\n\r\n",
        "GET {T} HTTX/1.1\r\nHost: {H}\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nExpect: 200-ok\r\n\r\n",
    ] + ["GET {T} HTTP/1.1\r\nHost: {H}\r\nX: a%sb\r\n\r\n" % chr(c) for c in list(range(1, 9)) + [11, 12, 14, 31]]


def plain_only_cases():
    return [
        "GET http://user@{H}/ HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET http://user:pw@{H}/ HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET http://{H}@evil.test/ HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "GET http://rec.test:0/ HTTP/1.1\r\nHost: rec.test:0\r\n\r\n",
        "GET http://rec.test:99999/ HTTP/1.1\r\nHost: rec.test\r\n\r\n",
        "GET http:///nohost HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "CONNECT user@{H} HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "CONNECT {H}/path HTTP/1.1\r\nHost: {H}\r\n\r\n",
        "CONNECT rec.test HTTP/1.1\r\nHost: rec.test\r\n\r\n",
        "CONNECT rec.test:0 HTTP/1.1\r\nHost: rec.test\r\n\r\n",
        "CONNECT rec.test:99999 HTTP/1.1\r\nHost: rec.test\r\n\r\n",
        "CONNECT rec.test:44x HTTP/1.1\r\nHost: rec.test\r\n\r\n",
        "CONNECT [::1:443 HTTP/1.1\r\nHost: x\r\n\r\n",
        "CONNECT rec.test:25 HTTP/1.1\r\nHost: rec.test:25\r\n\r\n",
        "CONNECT {H} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\n\r\nabcd",
    ]


def never_complete_cases():
    """Heads that can never complete by Vigil's rules (answered at once, not after header_read)
    and bodies that never complete (answered 408 by timeouts.body_stall), and look-alikes of
    framing headers."""
    return [
        "GET {T} HTTP/1.1\rHost: {H}\r\r",                 # CR line ends only
        "GET {T} HTTP/1.1\n\rHost: {H}\n\r\n\r",            # LF CR reversed
        "GET {T} HTTP/1.1\nHost: {H}\n",                     # LF only, head not yet ended
        "GET {T} HTTP/5.6\r\nHost: {H}\r\n",                 # unknown version, head not yet ended
        "GET {T}\r\n",                                       # HTTP/0.9 style
        "GET {T}\r\nHost: {H}\r\n\r\n",
        "GET\r\n",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 10\r\n\r\nabc",  # a body that never arrives
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n",  # no last chunk
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0;ext=\"x",  # unterminated extension
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nTransfer_Encoding: chunked\r\n\r\nabcd",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\ntransfer_encoding: chunked\r\n\r\nabcd",
        "POST {T} HTTP/1.1\r\nHost: {H}\r\nContent_Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nConnection_: close\r\nProxy_Connection: keep-alive\r\n\r\n",
    ]


def obfuscation_cases():
    """Transfer-Encoding spelled with odd bytes in its name or value, chunk extensions and
    trailers with quotes and odd bytes, HTTP/1.0 with Transfer-Encoding, overlong inputs."""
    te = "POST {T} HTTP/1.1\r\nHost: {H}\r\n%s\r\n\r\n0\r\n\r\n"
    chunked = "POST {T} HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n"
    return [te % h for h in (
        "Transfer-Encoding: chun\x00ked", "Transfer-Encoding: chunked\x0c", "Transfer-Encoding: \x85chunked",
        "Transfer-Encoding: chunk\xe9d", "Transfer-\x7fEncoding: chunked", "Transfer-Encoding\x0b: chunked",
        "Transfer-Encoding: 'chunked'", "TRANSFER-ENCODING: chunked\r\nContent-Length: 3",
        "Transfer-Encoding: chunked;q=0.5", "Transfer-Encoding: \"chunked\", chunked")] + [
        "POST {T} HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST {T} HTTP/1.0\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        chunked + "4;a=\"b\r\nc\"\r\nabcd\r\n0\r\n\r\n",
        chunked + "4;\x7f\r\nabcd\r\n0\r\n\r\n",
        chunked + "4;a=b;c\x01\r\nabcd\r\n0\r\n\r\n",
        chunked + "4;a=\"b\r\nabcd\r\n0\r\n\r\n",
        chunked + "4;a=b\nabcd\r\n0\r\n\r\n",
        chunked + "4\r\nabcd\r\n0\r\nX: a\x00b\r\n\r\n",
        chunked + "4\r\nabcd\r\n0\r\nX: a\n\r\n",
        chunked + "4\r\nabcd\r\n5\nabcde\r\n0\r\n\r\n",   # a later chunk line with a bare LF
        chunked + "4\r\nabcd\n0\r\n\r\n",                    # bare LF after chunk data
        "GET {T} HTTP/1.1\r\nHost: {H}\r\nX: " + "a" * (1 << 20) + "\r\n\r\n",
        "GET {T} HTTP/1.1\r\nHost: {H}\r\n" + "".join("X-%d: y\r\n" % i for i in range(10000)) + "\r\n",
        "GET {T}" + "a" * 70000 + " HTTP/1.1\r\nHost: {H}\r\n\r\n",
    ]


CORPUS = te_cases() + cl_cases() + chunk_cases() + head_cases() + never_complete_cases() + obfuscation_cases()
# Every case must be answered (a 4xx/501 status line) or closed within this bound: well under
# timeouts.header_read (30 s) and timeouts.io (120 s), above this gateway's body_stall (2 s).
# Silence until a timeout is a failure, not a refusal.
BOUND = 5.0


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["plain"] = Recorder()
    W["tls"] = TlsRecorder(*pki.leaf("rec", "rec.test"))
    W["ok"] = Origin("ok")  # answers: for the controls that must pass
    hosts = W["hosts"] = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test rec.test\n")
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--set", "timeouts.body_stall=2",
        "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d,%d]" % (W["tls"].port, W["plain"].port),
        "--set", "proxy.allowed_http_ports=[%d,%d]" % (W["plain"].port, W["ok"].port)])


def tearDownModule():
    W["vigil"].stop()
    W["plain"].close()
    W["tls"].close()
    W["ok"].close()
    remove_workdir(W["dir"])


def answer_within(sock, bound=BOUND):
    """What the gateway sends within `bound` seconds, and whether it closed the connection then."""
    deadline = time.time() + bound
    out, closed = b"", False
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, ssl.SSLError, OSError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        out += chunk
        if b"\r\n\r\n" in out and b"Content-Length: " in out:
            head, body = out.split(b"\r\n\r\n", 1)
            if len(body) >= int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]):
                break  # a whole answer
    return out, closed


def send_and_answer(sock, req):
    """Sends a case and returns answer_within(). The gateway may answer (431, 400) and close while
    a large case is still being sent: what it sent before closing is the answer."""
    try:
        sock.sendall(req.encode("latin-1"))
    except (ssl.SSLError, OSError):
        pass
    return answer_within(sock)


def refused(answered):
    """A 4xx answer or a 501 within the bound, or the connection closed within it; silence is not."""
    answer, closed = answered
    if not answer:
        return closed
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.") else b""
    return status[:1] == b"4" or status == b"501"


class SmugglingTest(unittest.TestCase):
    def test_corpus_is_large_enough(self):
        self.assertGreaterEqual(len(CORPUS) * 2 + len(plain_only_cases()), 150)

    def test_plain_requests_are_refused_and_nothing_reaches_the_origin(self):
        host = "rec.test:%d" % W["plain"].port
        for raw in CORPUS + plain_only_cases():
            req = raw.replace("{T}", "http://" + host + "/").replace("{H}", host)
            with self.subTest(req=req):
                s = socket.create_connection(("127.0.0.1", W["vigil"].port))
                answer = send_and_answer(s, req)
                s.close()
                self.assertTrue(refused(answer), answer[0][:200])
        time.sleep(0.3)
        # Not one byte arrived. (For requests whose body breaks framing, the origin connection
        # is already open when the body is read; it is closed without a byte sent.)
        self.assertEqual(W["plain"].received, b"")

    def test_bumped_requests_are_refused_and_nothing_reaches_the_origin(self):
        host = "rec.test:%d" % W["tls"].port
        ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
        for raw in CORPUS:
            req = raw.replace("{T}", "/").replace("{H}", host)
            with self.subTest(req=req):
                s, resp = connect_tunnel(W["vigil"].port, host)
                self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
                t = ctx.wrap_socket(s, server_hostname="rec.test")
                answer = send_and_answer(t, req)
                t.close()
                self.assertTrue(refused(answer), answer[0][:200])
        time.sleep(0.3)
        self.assertEqual(W["tls"].received, b"")  # TLS handshakes happened; no request byte arrived


class ControlsTest(unittest.TestCase):
    """Well-formed requests near the refused shapes must pass; a pipelined tail after a request
    that ends the connection must never reach the origin."""

    def exchange(self, raw, bound=BOUND):
        host = "ok.test:%d" % W["ok"].port
        req = raw.replace("{T}", "http://" + host).replace("{H}", host)
        s = socket.create_connection(("127.0.0.1", W["vigil"].port))
        s.sendall(req.encode("latin-1"))
        out = read_all(s, timeout=2)
        s.close()
        return out

    def test_well_formed_controls_pass(self):
        chunked = "POST {T}/post HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        for raw in (chunked + "4;name=value\r\nabcd\r\n0\r\n\r\n",
                    chunked + "4;a=\"quoted; ok\"\r\nabcd\r\n0\r\n\r\n",
                    chunked + "4\r\nabcd\r\n0\r\nX-Trailer: fine\r\n\r\n",
                    "POST {T}/post HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
                    "POST {T}/post HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
                    "GET {T}/hello HTTP/1.0\r\nHost: {H}\r\n\r\n",
                    "GET {T}/hello HTTP/1.1\r\nHost: {H}\r\nX_Custom_Name: underscores are fine\r\nConnection: close\r\n\r\n"):
            with self.subTest(req=raw[:90]):
                out = self.exchange(raw)
                self.assertTrue(out.startswith(b"HTTP/1.1 200") or out.startswith(b"HTTP/1.0 200"), out[:200])
                if "/post" in raw:
                    self.assertIn(b'"length": 4', out)

    def test_pipelined_tail_after_close_is_not_processed(self):
        for first in ("GET {T}/hello?first HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n",
                      "GET {T}/hello?first HTTP/1.0\r\nHost: {H}\r\n\r\n"):
            with self.subTest(first=first[:60]):
                before = W["ok"].stats["requests"]
                out = self.exchange(first + "GET {T}/hello?tail HTTP/1.1\r\nHost: {H}\r\n\r\n")
                self.assertEqual(out.count(b"hello from ok"), 1, out[:300])
                time.sleep(0.2)
                self.assertEqual(W["ok"].stats["requests"], before + 1)  # the tail never reached it


class HostileTlsTest(unittest.TestCase):
    """Broken or hostile TLS from either side: a clear refusal, and the gateway keeps serving."""

    def test_truncated_garbage_and_oversized_client_hellos(self):
        host = "rec.test:%d" % W["tls"].port
        records = [
            b"\x16\x03\x01\x40\x00" + b"\x01" * 100,          # claims 16 KiB, sends 100 bytes, closes
            b"\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff",        # handshake of garbage
            b"\x16\x03\x01\xff\xff" + b"\x00" * 70000,         # record longer than TLS allows
            b"\x16" + os.urandom(4096),
        ]
        for data in records:
            with self.subTest(data=data[:8]):
                s, resp = connect_tunnel(W["vigil"].port, host)
                self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
                try:  # the gateway may close first, which is the point
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                read_all(s, timeout=3)
                s.close()
        # Still serving.
        s, resp = connect_tunnel(W["vigil"].port, host)
        ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
        t = ctx.wrap_socket(s, server_hostname="rec.test")
        self.assertEqual(t.version()[:5], "TLSv1")
        t.close()

    def _through_bump(self, host, origin_port):
        """One GET through a fresh gateway to host:origin_port; returns (answer, counters)."""
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--set", "proxy.allow_private_destinations=true", "--set", "proxy.allowed_connect_ports=[%d]" % origin_port])
        try:
            s, resp = connect_tunnel(v.port, "%s:%d" % (host, origin_port))
            ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
            t = ctx.wrap_socket(s, server_hostname=host)
            t.sendall(b"GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host.encode(), origin_port))
            answer = read_all(t)
            t.close()
            # Still serving after it.
            s, resp = connect_tunnel(v.port, "%s:%d" % (host, origin_port))
            self.assertIn(b" 200 ", resp)
            s.close()
        finally:
            rc, counters = v.stop()
        self.assertEqual(rc, 0)
        return answer, counters

    def test_origin_with_a_huge_chain_is_refused_with_a_reason(self):
        d = os.path.join(W["dir"], "huge")
        os.makedirs(d, exist_ok=True)
        pki = W["pki"]
        leaf, key = pki.leaf("huge", "huge.test")
        chain = os.path.join(d, "chain.pem")
        with open(leaf) as f:
            body = f.read()
        with open(pki.other_ca_pem) as f:
            filler = f.read()
        with open(chain, "w") as f:
            f.write(body + filler * 300)  # a leaf and 300 certificates: far past any sane chain
        origin = TlsRecorder(chain, key)
        try:
            answer, counters = self._through_bump("huge.test", origin.port)
        finally:
            origin.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 502"), answer[:100])
        self.assertIn(b"X-Vigil-Reason: tls_handshake_failed", answer)
        self.assertIn(b"more certificate data than the gateway accepts (64 KiB)", answer)  # in words
        self.assertNotIn(b"excessive message size", answer)  # OpenSSL's own text stays in the log
        self.assertEqual(origin.received, b"")

    def test_origin_certificate_with_a_huge_extension_is_refused_with_a_reason(self):
        # A valid signature over a 200 KB extension: past the 64 KiB certificate list limit.
        pki = W["pki"]
        key, csr = pki._csr("bigext", "bigext.test")
        ext = pki._ext("bigext", "DNS:bigext.test")
        with open(ext, "a") as f:
            f.write("1.3.6.1.4.1.99999.1=ASN1:UTF8String:" + "x" * 200000 + "\n")
        pem = pki.path("bigext.pem")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key, "-CAcreateserial",
             "-out", pem, "-days", "5", "-extfile", ext])
        self.assertGreater(os.path.getsize(pem), 200000)
        origin = TlsRecorder(pem, key)
        try:
            answer, counters = self._through_bump("bigext.test", origin.port)
        finally:
            origin.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 502"), answer[:100])
        self.assertIn(b"X-Vigil-Reason: tls_handshake_failed", answer)
        self.assertIn(b"more certificate data than the gateway accepts (64 KiB)", answer)  # the list limit
        self.assertEqual(origin.received, b"")

    def test_origin_sending_garbage_instead_of_a_certificate_is_refused_with_a_reason(self):
        origin = GarbageCertServer()
        try:
            answer, counters = self._through_bump("garbage.test", origin.port)
        finally:
            origin.close()
        self.assertGreaterEqual(origin.hellos, 1)  # the gateway did reach it and read the garbage
        self.assertTrue(answer.startswith(b"HTTP/1.1 502"), answer[:100])
        self.assertIn(b"X-Vigil-Reason: tls_handshake_failed", answer)
        self.assertIn(b"a certificate that cannot be read", answer)  # the DER parser said no, in words
        self.assertNotIn(b"asn1 encoding routines", answer)
        self.assertGreaterEqual(counters["upstream_tls_failed"], 1)


class GarbageCertServer:
    """A TLS 1.2 'server' that answers any ClientHello with a ServerHello and a Certificate
    message whose one certificate is random bytes, not DER."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hellos = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _handshake(kind, body):
        return bytes([kind]) + len(body).to_bytes(3, "big") + body

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.settimeout(5)
                hello = conn.recv(65536)
                if not hello.startswith(b"\x16"):
                    conn.close()
                    continue
                self.hellos += 1
                renegotiation_info = b"\xff\x01\x00\x01\x00"
                server_hello = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\xc0\x2f" + b"\x00" +
                                len(renegotiation_info).to_bytes(2, "big") + renegotiation_info)
                garbage = b"\x30\x82\xff\xff" + os.urandom(700)  # claims a 64 KiB SEQUENCE, is noise
                entry = len(garbage).to_bytes(3, "big") + garbage
                certificate = len(entry).to_bytes(3, "big") + entry
                flight = self._handshake(2, server_hello) + self._handshake(11, certificate)
                conn.sendall(b"\x16\x03\x03" + len(flight).to_bytes(2, "big") + flight)
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()


if __name__ == "__main__":
    unittest.main()
