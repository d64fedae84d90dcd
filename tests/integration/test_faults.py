"""Reliability under faults, through the real gateway on loopback: the audit WAL stays bounded
under a minute of load and shrinks when idle; transfers cut by the origin, the client or the
shutdown are audited as `aborted` (and answered 502 when nothing was sent); a request head
trickled a byte at a time meets a deadline and a 408; a killed gateway's next start records the
gap; /readyz answers during the drain; accept failures are counted and not logged in a flood;
a rules database corrupted in place is noticed by the poll; pooled origin connections close
after their idle time."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import (BIN_DIR, VIGIL, Origin, Pki, Vigil, VIGIL_CA, connect_tunnel, curl, make_workdir, read_all,
                     remove_workdir, run)

AUDIT = os.path.join(BIN_DIR, "vigil-audit")
RULES = os.path.join(BIN_DIR, "vigil-rules")
LOADGEN = os.path.join(BIN_DIR, "vigil_loadgen")
DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "rules", "default", "default.json")
W = {}


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["tls"] = Origin("tls", *pki.leaf("files", "www.files.test"))
    W["plain"] = Origin("plain")
    W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", W["rules"], "init"])
    run([RULES, "--db", W["rules"], "import", DEFAULT])
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")


def tearDownModule():
    for k in ("tls", "plain"):
        W[k].close()
    remove_workdir(W["dir"])


def start(name, *extra, audit=True, rules=True, **kw):
    args = ["--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%d]" % W["tls"].port,
            "--set", "proxy.allowed_http_ports=[%d]" % W["plain"].port]
    if rules:
        args += ["--rules", W["rules"]]
    path = None
    if audit:
        path = os.path.join(W["dir"], name + "-audit.db")
        args += ["--audit", path]
    v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=args + list(extra), **kw)
    v.audit_path = path
    return v


def audit_rows(path, *filters):
    p = subprocess.run([AUDIT, "--db", path, "query", "--format", "json", "--limit", "100000"] + list(filters),
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def admin_get(v, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (v.admin_port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def gauge(v, name):
    _, text = admin_get(v, "/metrics")
    found = re.search(r"^vigil_%s (\S+)$" % name, text, re.M)
    if not found:
        raise AssertionError("no vigil_%s on /metrics" % name)
    return float(found.group(1))


def plain_url(path):
    return "http://www.plain.test:%d%s" % (W["plain"].port, path)


def https_url(path):
    return "https://www.files.test:%d%s" % (W["tls"].port, path)


def via(v, url, *args):
    return curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"), url, *args)


class AuditWalTest(unittest.TestCase):
    """Point 1: a minute of keep-alive load; the WAL stays under its bound and is truncated when idle."""

    def test_wal_is_bounded_under_load_and_truncated_when_idle(self):
        limit = 1 << 20
        v = start("wal", "--set", "audit.wal_limit=%d" % limit)
        wal = v.audit_path + "-wal"
        try:
            # Cached answers: the gateway serves them itself, as fast as it can, one record each.
            url = plain_url("/c/wal?cc=max-age%3D3600")
            self.assertEqual(via(v, url)[1], 200)
            # 6,000 requests/s for a minute: ~7 MB/s of WAL that the old checkpointing never caught up
            # with (the WAL grew to 1 GB in 30 s unpaced); ~170 MB of audit rows in the test directory.
            load = subprocess.Popen([LOADGEN, "--url", url, "--proxy", "127.0.0.1:%d" % v.port, "--connections", "8",
                                     "--seconds", "60", "--threads", "1", "--rate", "6000"],
                                    stdout=subprocess.PIPE, text=True)
            peak = 0
            while load.poll() is None:
                if os.path.exists(wal):
                    peak = max(peak, os.path.getsize(wal))
                time.sleep(0.2)
            out = load.stdout.read()
            load.stdout.close()
            result = json.loads(out.strip().splitlines()[-1])
            self.assertGreater(result["requests"], 200000, out)  # real load: a hundred WAL bounds' worth
            # The bound plus one batch committed after the pause (a few hundred KiB at this rate).
            self.assertLess(peak, 3 * limit, "WAL peaked at %d bytes" % peak)
            self.assertLessEqual(gauge(v, "audit_wal_bytes"), 3 * limit)
            v.metric("audit_wal_resets")  # exported (the pause itself: audit_store_test, unpaced)
            # Idle: copied back and truncated within a couple of seconds.
            deadline = time.time() + 10
            while time.time() < deadline and os.path.exists(wal) and os.path.getsize(wal) > 0:
                time.sleep(0.2)
            self.assertEqual(os.path.getsize(wal) if os.path.exists(wal) else 0, 0)
            self.assertEqual(gauge(v, "audit_wal_bytes"), 0)
        finally:
            code, counters = v.stop()
        self.assertEqual(code, 0)
        # Every answered request has its row (the bound pauses the writer, it loses nothing).
        n = subprocess.run([AUDIT, "--db", v.audit_path, "stats", "--by", "action", "--exact"], capture_output=True,
                           text=True, check=True).stdout
        allowed = int(re.search(r"^allow\s+(\d+)", n, re.M).group(1))
        self.assertGreaterEqual(allowed, result["requests"])
        self.assertIn("the hash chain is intact", subprocess.run([AUDIT, "--db", v.audit_path, "verify"],
                                                                 capture_output=True, text=True).stdout)


class AbortedTransferTest(unittest.TestCase):
    """Point 2: transfers that did not complete are recorded as such, with the bytes delivered."""

    @classmethod
    def setUpClass(cls):
        cls.v = start("aborted")

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    def record(self, url_part):
        for _ in range(50):
            rows = [r for r in audit_rows(self.v.audit_path) if url_part in r["url"]]
            if rows:
                return rows[-1]
            time.sleep(0.1)
        self.fail("no audit record for " + url_part)

    def test_short_body_before_anything_was_sent_gets_a_502_page(self):
        # 100,000 of 1,000,000 bytes: all still held (hold_bytes 256 KiB), so the client gets a page.
        code, status, headers, body, _ = via(self.v, plain_url("/cut/1000000/100000"))
        self.assertEqual(status, 502)
        self.assertIn("x-vigil-reason: origin_short_body", headers.lower())
        r = self.record("/cut/1000000/100000")
        self.assertEqual((r["status"], r["action"]), (502, "aborted"))
        self.assertTrue(r["reason"].startswith("origin_short_body: "), r["reason"])

    def test_short_body_inside_the_bump_after_the_head_is_recorded_with_bytes_delivered(self):
        before = self.v.metric("aborted_transfers")
        code, status, _, body, _ = via(self.v, https_url("/cut/1000000/400000"))
        self.assertNotEqual(code, 0)  # curl saw a cut transfer, not a clean end
        self.assertEqual(status, 200)
        r = self.record("/cut/1000000/400000")
        self.assertEqual(r["action"], "aborted")
        self.assertTrue(r["reason"].startswith("origin_short_body: "), r["reason"])
        self.assertEqual(r["bytes_to_client"] >= len(body) > 0, True, (r["bytes_to_client"], len(body)))
        self.assertLess(r["bytes_to_client"], 1000000)
        self.assertEqual(self.v.metric("aborted_transfers"), before + 1)

    def test_origin_reset_mid_body(self):
        code, status, _, body, _ = via(self.v, plain_url("/reset/1000000/400000"))
        self.assertNotEqual(code, 0)
        r = self.record("/reset/1000000/400000")
        self.assertEqual(r["action"], "aborted")
        self.assertTrue(r["reason"].startswith("origin_reset: "), r["reason"])
        self.assertLess(r["bytes_to_client"], 1000000)

    def test_client_gone_mid_download(self):
        s = socket.create_connection(("127.0.0.1", self.v.port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: www.plain.test:%d\r\n\r\n" %
                   (plain_url("/bytes/50000000"), W["plain"].port)).encode())
        got = 0
        while got < 2_000_000:
            got += len(s.recv(65536))
        s.close()
        r = self.record("/bytes/50000000")
        self.assertEqual(r["action"], "aborted")
        self.assertTrue(r["reason"].startswith("client_gone: "), r["reason"])
        self.assertLess(r["bytes_to_client"], 50000000)


class ShutdownCutTest(unittest.TestCase):
    """Point 2: a download cut at the end of the shutdown grace period is recorded as aborted."""

    def test_cut_at_the_end_of_the_grace_period(self):
        v = start("grace", "--set", "proxy.shutdown_grace=1")
        # 2 MB over 6 s: past hold_bytes, so the head and some bytes are out when the grace ends.
        client = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-x", v.proxy, plain_url("/slowbytes/2000000/6")])
        time.sleep(1.5)
        code, _ = v.stop()
        client.wait(timeout=10)
        self.assertEqual(code, 0)
        rows = [r for r in audit_rows(v.audit_path) if "/slowbytes/" in r["url"]]
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["action"], "aborted")
        self.assertTrue(rows[0]["reason"].startswith("shutdown: "), rows[0]["reason"])
        self.assertGreater(rows[0]["bytes_to_client"], 0)


def trickle(sock, data, every, stop_after):
    """Sends `data` one byte every `every` seconds; returns (what came back, seconds until it came)."""
    sock.settimeout(every)
    start_t = time.time()
    got = b""
    for b in data:
        try:
            sock.sendall(bytes([b]))
        except OSError:
            break
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.time() - start_t > stop_after:
            break
    return got, time.time() - start_t


class HeadDeadlineTest(unittest.TestCase):
    """Point 3: header_read bounds the whole head (and the TLS handshake), trickled or not."""

    @classmethod
    def setUpClass(cls):
        cls.v = start("deadline", "--set", "timeouts.header_read=3", "--set", "timeouts.handshake=3",
                      "--set", "timeouts.idle=20")

    @classmethod
    def tearDownClass(cls):
        cls.v.stop()

    HEAD = b"GET http://www.plain.test/hello HTTP/1.1\r\nHost: www.plain.test\r\nUser-Agent: " + b"x" * 200 + b"\r\n\r\n"

    def test_trickled_plain_head_gets_408(self):
        s = socket.create_connection(("127.0.0.1", self.v.port))
        got, took = trickle(s, self.HEAD, 0.5, 15)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:80])
        self.assertLess(took, 8)
        self.assertGreaterEqual(self.v.metric("header_timeout"), 1)

    def test_trickled_connect_head_gets_408(self):
        s = socket.create_connection(("127.0.0.1", self.v.port))
        head = ("CONNECT www.files.test:%d HTTP/1.1\r\nHost: www.files.test\r\nX-Pad: %s\r\n\r\n" %
                (W["tls"].port, "y" * 200)).encode()
        got, took = trickle(s, head, 0.5, 15)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:80])
        self.assertLess(took, 8)

    def test_next_head_on_a_kept_alive_connection_has_the_same_deadline(self):
        s = socket.create_connection(("127.0.0.1", self.v.port))
        first = ("GET %s HTTP/1.1\r\nHost: www.plain.test:%d\r\n\r\n" % (plain_url("/hello"), W["plain"].port)).encode()
        s.sendall(first)
        answer = b""
        while b"hello from plain" not in answer:
            answer += s.recv(65536)
        time.sleep(4)  # idle longer than header_read: allowed (timeouts.idle = 20)
        got, took = trickle(s, self.HEAD, 0.5, 15)
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:80])
        self.assertLess(took, 8)

    def test_trickled_head_inside_the_bump_gets_408(self):
        s, resp = connect_tunnel(self.v.port, "www.files.test:%d" % W["tls"].port)
        self.assertIn(b" 200 ", resp)
        ctx = ssl.create_default_context(cafile=os.path.join(W["ca"], "root.pem"))
        t = ctx.wrap_socket(s, server_hostname="www.files.test")
        head = ("GET /hello HTTP/1.1\r\nHost: www.files.test:%d\r\nX-Pad: %s\r\n\r\n" % (W["tls"].port, "z" * 200)).encode()
        got, took = trickle(t, head, 0.5, 15)
        t.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 408"), got[:80])
        self.assertLess(took, 8)

    def test_trickled_tls_handshake_is_cut_at_its_deadline(self):
        s, resp = connect_tunnel(self.v.port, "www.files.test:%d" % W["tls"].port)
        self.assertIn(b" 200 ", resp)
        # A ClientHello record header announcing 512 bytes, then its body a byte at a time.
        hello = b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc" + b"\x03\x03" + b"\x00" * 506
        s.settimeout(0.5)
        t0 = time.time()
        closed = False
        for b in hello:
            try:
                s.sendall(bytes([b]))
                if s.recv(1024) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
            if time.time() - t0 > 15:
                break
        s.close()
        self.assertTrue(closed)
        self.assertLess(time.time() - t0, 8)

    def test_silent_new_connection_is_closed_quietly_at_header_read(self):
        s = socket.create_connection(("127.0.0.1", self.v.port))
        t0 = time.time()
        got = read_all(s, 10)
        s.close()
        self.assertEqual(got, b"")  # nothing was asked: no 408 for a connection that never spoke
        self.assertLess(time.time() - t0, 8)


class UncleanStopTest(unittest.TestCase):
    """Point 4: after kill -9 the next start records the gap; a clean stop leaves none."""

    def test_kill_leaves_a_recorded_gap(self):
        v = start("crash")
        path = v.audit_path
        for i in range(5):
            self.assertEqual(via(v, plain_url("/hello?n=%d" % i))[1], 200)
        time.sleep(0.5)  # committed (the writer gathers for 10 ms)
        v.proc.send_signal(signal.SIGKILL)
        v.proc.wait()
        v.log.close()
        v2 = start("crash")
        self.assertIn("did not stop cleanly", v2.read_log())
        self.assertEqual(v2.stop()[0], 0)
        gaps = audit_rows(path, "--action", "unclean-stop")
        self.assertEqual(len(gaps), 1)
        self.assertIn("records may be missing between", gaps[0]["reason"])
        out = subprocess.run([AUDIT, "--db", path, "verify"], capture_output=True, text=True).stdout
        self.assertIn("the hash chain is intact", out)
        self.assertIn("records may be missing between", out)
        # A clean stop, then a start: no new gap.
        v3 = start("crash")
        self.assertEqual(v3.stop()[0], 0)
        self.assertEqual(len(audit_rows(path, "--action", "unclean-stop")), 1)


class DrainTest(unittest.TestCase):
    """Point 5: /readyz says 503 during the drain instead of refusing connections."""

    def test_readyz_during_drain(self):
        v = start("drain", "--set", "proxy.shutdown_grace=10")
        self.assertEqual(admin_get(v, "/readyz")[0], 200)
        client = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-x", v.proxy,
                                   plain_url("/slowbytes/500000/3")], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        v.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        status, body = admin_get(v, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("shutting down", body)
        self.assertEqual(client.communicate(timeout=15)[0], "200")  # the download finished
        self.assertEqual(v.stop()[0], 0)


class AcceptFailureTest(unittest.TestCase):
    """Point 5: out of descriptors, accept failures are counted, logged rarely and recovered from."""

    def test_emfile_is_counted_and_not_flooded(self):
        v = start("emfile", "--threads", "1", audit=False, rules=False, wrapper=["prlimit", "--nofile=48:48"])
        socks = []
        try:
            for _ in range(60):
                socks.append(socket.create_connection(("127.0.0.1", v.port), timeout=5))
            time.sleep(3)
        finally:
            for s in socks:
                s.close()
        time.sleep(1)
        self.assertEqual(via(v, plain_url("/hello"))[1], 200)  # recovered
        self.assertGreater(v.metric("accept_failed"), 0)
        lines = [l for l in v.read_log().splitlines() if "accept failed" in l]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 2)  # 3 s of failures: one report (at most one per 10 s)
        self.assertEqual(v.stop()[0], 0)


class RulesPollTest(unittest.TestCase):
    """Point 5: a rules database corrupted in place (same size, same mtime) is noticed by the poll."""

    def test_corruption_in_place_is_noticed_and_reported(self):
        db = os.path.join(W["dir"], "poll-rules.db")
        shutil.copy(W["rules"], db)
        v = start("poll", "--set", "rules.reload_interval=1", "--rules", db, rules=False)
        try:
            self.assertEqual(gauge(v, "ruleset_reload_failed"), 0)
            good = open(db, "rb").read()
            st = os.stat(db)
            with open(db, "r+b") as f:  # every page after the first two overwritten, size kept
                f.seek(8192)
                f.write(b"\xa5" * (len(good) - 8192))
            os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns))
            deadline = time.time() + 10
            while time.time() < deadline and gauge(v, "ruleset_reload_failed") != 1:
                time.sleep(0.2)
            self.assertEqual(gauge(v, "ruleset_reload_failed"), 1)
            status, body = admin_get(v, "/readyz")
            self.assertEqual(status, 200)  # the previous ruleset still serves
            self.assertIn("could not be loaded", body)
            time.sleep(2.5)  # more polls of the same broken file: reported once, not every poll
            self.assertEqual(v.metric("ruleset_reload_failed"), 1)
            with open(db, "wb") as f:
                f.write(good)
            deadline = time.time() + 10
            while time.time() < deadline and gauge(v, "ruleset_reload_failed") != 0:
                time.sleep(0.2)
            self.assertEqual(gauge(v, "ruleset_reload_failed"), 0)
        finally:
            v.stop()
        self.assertEqual(len(audit_rows(v.audit_path, "--action", "ruleset-failed")), 1)


class PoolIdleTest(unittest.TestCase):
    """Point 5: pooled origin connections are closed after their idle time (15 s) with no traffic."""

    def origin_connections(self, v):
        out = subprocess.run(["ss", "-Htnp", "state", "established", "( dport = :%d )" % W["tls"].port],
                             capture_output=True, text=True).stdout
        return len([l for l in out.splitlines() if "pid=%d," % v.proc.pid in l])

    def test_pooled_connections_close_after_idle_time(self):
        v = start("pool", "--threads", "1")
        try:
            for i in range(4):
                self.assertEqual(via(v, https_url("/hello?n=%d" % i))[1], 200)
            self.assertGreaterEqual(self.origin_connections(v), 1)
            deadline = time.time() + 25
            while time.time() < deadline and self.origin_connections(v) > 0:
                time.sleep(0.5)
            self.assertEqual(self.origin_connections(v), 0)
        finally:
            v.stop()


if __name__ == "__main__":
    unittest.main()
