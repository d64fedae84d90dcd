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

from harness import (Pki, Recorder, Vigil, VIGIL_CA, connect_tunnel, make_workdir, read_all, remove_workdir,
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


CORPUS = te_cases() + cl_cases() + chunk_cases() + head_cases()


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["plain"] = Recorder()
    W["tls"] = TlsRecorder(*pki.leaf("rec", "rec.test"))
    hosts = W["hosts"] = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test rec.test\n")
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d,%d]" % (W["tls"].port, W["plain"].port)])


def tearDownModule():
    W["vigil"].stop()
    W["plain"].close()
    W["tls"].close()
    remove_workdir(W["dir"])


def refused(answer):
    """A 4xx answer, a 501, or no answer at all (connection closed)."""
    if not answer:
        return True
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
                s.sendall(req.encode("latin-1"))
                answer = read_all(s)
                s.close()
                self.assertTrue(refused(answer), answer[:200])
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
                t.sendall(req.encode("latin-1"))
                answer = read_all(t)
                t.close()
                self.assertTrue(refused(answer), answer[:200])
        time.sleep(0.3)
        self.assertEqual(W["tls"].received, b"")  # TLS handshakes happened; no request byte arrived


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
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=pki.ca_pem, extra_args=[
            "--set", "proxy.allow_private_destinations=true", "--set", "proxy.allowed_connect_ports=[%d]" % origin.port])
        try:
            s, resp = connect_tunnel(v.port, "huge.test:%d" % origin.port)
            ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
            t = ctx.wrap_socket(s, server_hostname="huge.test")
            t.sendall(b"GET / HTTP/1.1\r\nHost: huge.test:%d\r\n\r\n" % origin.port)
            answer = read_all(t)
            t.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 502"), answer[:100])
            self.assertIn(b"X-Vigil-Reason: ", answer)
        finally:
            rc, counters = v.stop()
            origin.close()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    unittest.main()
