"""Traffic through the real gateway: per-client and per-group bandwidth limits (token buckets,
paced by timers on the workers), measured with real curl clients from different loopback
addresses, in plain HTTP, inside the bump, for uploads and spliced tunnels; on-the-fly gzip/br
compression of text responses, and every case where it must not happen; parent proxies with
failover, health checks, host-hash, direct hosts and direct fallback; bad values refused."""

import os
import subprocess
import time
import unittest
import urllib.parse

import gzip
import http.client

from harness import (BIN_DIR, VIGIL, Origin, ParentProxy, Pki, Vigil, VIGIL_CA, brotli_decompress, connect_tunnel, curl,
                     free_port, make_workdir, remove_workdir, run, text_body)

RULES = os.path.join(BIN_DIR, "vigil-rules")
W = {}
RATE = 1_000_000  # limits.client_rate in the first gateway: 1 MB/s each way per client address
GROUP_RATE = 500_000  # limits.group_rate.staff in the second


def vr(*args, stdin=None):
    return subprocess.run([RULES, "--db", W["db"], "--actor", "tests"] + list(args), capture_output=True, text=True,
                          check=True, input=stdin)


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = Pki(d)
    W["plain"] = Origin("plain")
    W["tls"] = Origin("files", *pki.leaf("files", "www.files.test"))
    W["bank"] = Origin("bank", *pki.leaf("bank", "www.bank.test"))
    W["pki"] = pki
    W["db"] = os.path.join(d, "rules.db")
    vr("init")
    vr("add", "category", "banking")
    vr("add", "host", ".bank.test", "--category", "banking")
    vr("add", "policy", "bank-bypass", "--action", "bypass_inspection", "--category", "banking")
    vr("add", "signature", "magic-word", "--target", "response_body", "--pattern", "(?i)xyzzy", "--action", "block")
    vr("group", "add", "staff")
    vr("group", "add", "finance")
    vr("user", "add", "bob", "--password-file", "-", "--group", "staff", stdin="bob-secret-22\n")
    vr("user", "add", "alice", "--password-file", "-", "--group", "finance", stdin="alice-secret-1\n")
    hosts = W["hosts"] = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test\n")
    common = ["--rules", W["db"], "--set", "proxy.allow_private_destinations=true",
              "--set", "proxy.allowed_connect_ports=[%d,%d]" % (W["tls"].port, W["bank"].port), "--set", 'proxy.allow_clients=["127.0.0.0/8"]']
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem,
                       extra_args=common + ["--set", "limits.client_rate=%d" % RATE])
    W["groups"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem,
                        extra_args=common + ["--set", "auth.required=true",
                                             "--set", 'limits.group_rate={ staff = "500KB" }'])
    for name in ("p1", "p2", "p3", "p4", "f1", "f2", "l1", "l2", "h1"):
        W[name] = ParentProxy(name)
    W["r1"] = ParentProxy("r1", refuse_connect=True)

    def parents(*names, extra=()):
        listing = ", ".join('{ address = "127.0.0.1:%d", name = "%s" }' % (W[n].port, n) for n in names)
        return Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem,
                     extra_args=common + ["--set", "upstream.parents=[%s]" % listing,
                                          "--set", "upstream.health_interval=1"] + list(extra))
    W["parents"] = parents("p1", "p2", extra=["--set", 'upstream.direct_hosts=[".direct.test"]'])
    W["hashing"] = parents("p3", "p4", extra=["--set", 'upstream.selection="host-hash"'])
    W["failover"] = parents("f1", "f2")
    W["refusing"] = parents("r1")
    W["leastconn"] = parents("l1", "l2", extra=["--set", 'upstream.selection="least-connections"'])
    W["strict"] = parents("p1", extra=["--set", "proxy.allow_private_destinations=false"])
    W["some"] = parents("h1", extra=["--set", 'upstream.parent_hosts=[".via.test"]'])
    dead = '[{ address = "127.0.0.1:%d", name = "gone" }]' % free_port()
    W["no_parent"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem,
                           extra_args=common + ["--set", "upstream.parents=" + dead])
    W["fallback"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem,
                          extra_args=common + ["--set", "upstream.parents=" + dead, "--set", "upstream.direct_fallback=true"])
    W["compress"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=common + ["--set", "compress.https=true"])


def tearDownModule():
    for v in ("vigil", "groups", "compress", "parents", "hashing", "failover", "refusing", "leastconn", "strict",
              "no_parent", "fallback", "some"):
        if W[v].proc.poll() is None:
            W[v].stop()
    for o in ("plain", "tls", "bank"):
        W[o].close()
    for name in ("p1", "p2", "p3", "p4", "f1", "f2", "r1", "l1", "l2", "h1"):
        W[name].kill()
    remove_workdir(W["dir"])


def start_curl(proxy, url, source, *extra):
    """A real curl from `source` (a loopback address) through the proxy; prints bytes and seconds."""
    return subprocess.Popen(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", "60", "--interface", source, "-x", proxy,
         "--cacert", os.path.join(W["ca"], "root.pem"), "-w", "%{http_code} %{size_download} %{size_upload} %{time_total}",
         url] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=90)
    status, down, up, secs = out.split()
    if status != "200":
        raise AssertionError("curl: status %s %s" % (status, err))
    return int(down), int(up), float(secs)


def plain_url(n):
    return "http://127.0.0.1:%d/bytes/%d" % (W["plain"].port, n)


class ClientRate(unittest.TestCase):
    def test_greedy_client_is_held_to_its_rate_while_another_keeps_its_speed(self):
        proxy = W["vigil"].proxy
        t0 = time.time()
        greedy = [start_curl(proxy, plain_url(1_000_000), "127.0.0.2") for _ in range(4)]
        time.sleep(0.3)  # the greedy client has its four transfers going
        other = finish(start_curl(proxy, plain_url(1_000_000), "127.0.0.3"))
        results = [finish(p) for p in greedy]
        greedy_secs = time.time() - t0
        total = sum(r[0] for r in results)
        self.assertEqual(total, 4_000_000)
        # Four connections share one bucket: ~4 s at 1 MB/s (less the quarter-second burst),
        # where unthrottled loopback takes a small fraction of a second.
        self.assertLess(total / greedy_secs, RATE * 1.25, "greedy client not held to its rate")
        self.assertGreater(total / greedy_secs, RATE * 0.6, "greedy client slowed below its rate")
        # The other client has its own bucket: its 1 MB takes about a second, not the ~5 s a
        # shared fifth of the rate would.
        self.assertEqual(other[0], 1_000_000)
        self.assertGreater(other[0] / other[2], RATE * 0.6, "another client was slowed by the greedy one")
        self.assertLess(other[0] / other[2], RATE * 1.6)

    def test_bumped_download_and_plain_upload_are_limited(self):
        proxy = W["vigil"].proxy
        down, _, secs = finish(start_curl(proxy, "https://www.files.test:%d/bytes/1500000" % W["tls"].port, "127.0.0.5"))
        self.assertEqual(down, 1_500_000)
        self.assertGreater(secs, 1.0, "bumped download not limited")  # 1.5 MB at 1 MB/s, less the burst
        body = os.path.join(W["dir"], "upload.bin")
        with open(body, "wb") as f:
            f.write(os.urandom(1_500_000))
        _, up, secs = finish(start_curl(proxy, "http://127.0.0.1:%d/upload" % W["plain"].port, "127.0.0.6",
                                        "--data-binary", "@" + body, "-H", "Content-Type: application/octet-stream"))
        self.assertEqual(up, 1_500_000)
        self.assertGreater(secs, 1.0, "upload not limited")
        self.assertLess(secs, 4.0)


    def test_spliced_tunnel_is_limited(self):
        # Bypassed (not decrypted): the bytes still pass through the client's bucket.
        down, _, secs = finish(start_curl(W["vigil"].proxy, "https://www.bank.test:%d/bytes/1500000" % W["bank"].port,
                                          "127.0.0.9", "--cacert", W["pki"].ca_pem))
        self.assertEqual(down, 1_500_000)
        self.assertGreater(secs, 1.0, "spliced tunnel not limited")


class GroupRate(unittest.TestCase):
    def test_group_limit_applies_to_its_members_only(self):
        proxy = W["groups"].proxy
        bob = start_curl(proxy, plain_url(2_000_000), "127.0.0.7", "--proxy-user", "bob:bob-secret-22")
        alice = start_curl(proxy, plain_url(2_000_000), "127.0.0.8", "--proxy-user", "alice:alice-secret-1")
        bob_down, _, bob_secs = finish(bob)
        alice_down, _, alice_secs = finish(alice)
        self.assertEqual((bob_down, alice_down), (2_000_000, 2_000_000))
        # staff: 500 KB/s -> about four seconds for 2 MB (less the burst); finance has no limit
        # (well under a second here, under two even in a sanitized build).
        self.assertGreater(bob_secs, 3.0, "the staff group limit did not apply")
        self.assertLess(bob_secs, 6.0)
        self.assertLess(alice_secs, 2.0, "a member of another group was limited")


def get(path, accept=None, proxy="compress", method="GET", extra=None):
    """A plain-HTTP request through the proxy with exactly the headers given; the answer's
    status, headers (lower-case names) and body (chunked framing removed, content codings not)."""
    conn = http.client.HTTPConnection("127.0.0.1", W[proxy].port, timeout=30)
    headers = dict(extra or {})
    if accept is not None:
        headers["Accept-Encoding"] = accept
    conn.request(method, "http://127.0.0.1:%d%s" % (W["plain"].port, path), headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


class Compression(unittest.TestCase):
    def test_text_is_compressed_in_the_coding_the_client_prefers(self):
        want = text_body(100_000)
        status, h, body = get("/text/100000", "gzip, deflate")
        self.assertEqual(status, 200)
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(h.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", h)
        self.assertEqual(h.get("vary"), "Origin, Accept-Encoding")
        self.assertEqual(h.get("etag"), 'W/"v1"')
        self.assertEqual(gzip.decompress(body), want)
        self.assertLess(len(body), len(want) / 10)
        for accept in ("br", "gzip;q=0.5, br;q=1.0", "br, gzip"):
            status, h, body = get("/text/100000", accept)
            self.assertEqual(h.get("content-encoding"), "br", accept)
            self.assertEqual(brotli_decompress(body), want, accept)
        status, h, body = get("/text/100000", "br;q=0.2, gzip")
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(body), want)
        self.assertGreaterEqual(W["compress"].metric("compressed"), 5)
        self.assertGreater(W["compress"].metric("compress_in_bytes"), 10 * W["compress"].metric("compress_out_bytes"))

    def test_types_and_chunked_origins(self):
        for ctype in ("application/json", "application/javascript", "image/svg+xml", "application/ld+json",
                      "text/css; charset=utf-8"):
            status, h, body = get("/text/5000?type=" + urllib.parse.quote(ctype), "gzip")
            self.assertEqual(h.get("content-encoding"), "gzip", ctype)
            self.assertEqual(gzip.decompress(body), text_body(5000), ctype)
        # An origin that streams chunked (length unknown) is compressed as it streams.
        status, h, body = get("/text/300000?chunked=1", "gzip")
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(body), text_body(300_000))

    def test_never_compressed(self):
        cases = {
            "client accepts nothing": ("/text/5000", None, {}),
            "client refuses gzip": ("/text/5000", "gzip;q=0", {}),
            "identity only": ("/text/5000", "identity", {}),
            "too small": ("/text/1000", "gzip", {}),
            "not text": ("/text/5000?type=image/png", "gzip", {}),
            "event stream": ("/text/5000?type=text/event-stream", "gzip", {}),
            "no-transform": ("/text/5000?cc=public,%20no-transform", "gzip", {}),
            "range asked": ("/text/5000", "gzip", {"Range": "bytes=0-99"}),
        }
        for what, (path, accept, extra) in cases.items():
            status, h, body = get(path, accept, extra=extra)
            self.assertEqual(status, 200, what)
            self.assertNotIn("content-encoding", h, what)
            self.assertEqual(h.get("etag"), '"v1"', what)
            self.assertEqual(h.get("vary"), "Origin", what)
            self.assertEqual(body, text_body(int(path.split("/")[2].split("?")[0])), what)
        # Already encoded by the origin: passed on as it is.
        status, h, body = get("/text/5000?ce=gzip", "gzip, br")
        self.assertEqual(h.get("content-encoding"), "gzip")
        self.assertEqual(h.get("content-length"), "5000")
        # HEAD: the head only, unchanged.
        status, h, body = get("/text/5000", "gzip", method="HEAD")
        self.assertEqual((status, body, h.get("content-length")), (200, b"", "5000"))
        self.assertNotIn("content-encoding", h)
        # Turned off for bumped HTTPS by default (the first gateway leaves compress.https off).
        url = "https://www.files.test:%d/text/50000" % W["tls"].port
        code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--interface", "127.0.0.10", "--cacert",
                                                os.path.join(W["ca"], "root.pem"), "-H", "Accept-Encoding: gzip", url)
        self.assertEqual((code, status), (0, 200), err)
        self.assertNotIn("content-encoding", headers.lower())
        self.assertEqual(body, text_body(50_000))

    def test_bumped_https_with_compress_https(self):
        url = "https://www.files.test:%d/text/50000" % W["tls"].port
        code, status, headers, body, err = curl("-x", W["compress"].proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                                                "-H", "Accept-Encoding: gzip", url)
        self.assertEqual((code, status), (0, 200), err)
        self.assertIn("content-encoding: gzip", headers.lower())
        self.assertEqual(gzip.decompress(body), text_body(50_000))
        # curl decoding it itself, as a browser would.
        code, status, headers, body, err = curl("-x", W["compress"].proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                                                "--compressed", url)
        self.assertEqual((code, status, body), (0, 200, text_body(50_000)), err)

    def test_signatures_see_the_uncompressed_body(self):
        # Within the held bytes: a block page, never compressed. In the middle of 3 MB (past the
        # held bytes, so the compressed head is out): the transfer is cut short, never completed.
        status, h, body = get("/text/20000?word=xyzzy", "gzip")
        self.assertEqual(status, 403)
        self.assertNotIn("content-encoding", h)
        conn = http.client.HTTPConnection("127.0.0.1", W["compress"].port, timeout=30)
        conn.request("GET", "http://127.0.0.1:%d/text/3000000?word=xyzzy" % W["plain"].port,
                     headers={"Accept-Encoding": "gzip"})
        r = conn.getresponse()
        self.assertEqual(r.getheader("Content-Encoding"), "gzip")
        with self.assertRaises(http.client.IncompleteRead):
            r.read()
        conn.close()


class Parents(unittest.TestCase):
    def test_plain_and_bumped_requests_go_through_the_parents(self):
        before = {n: dict(W[n].counts) for n in ("p1", "p2")}
        for i in range(4):
            status, h, body = get("/hello?%d" % i, proxy="parents")
            self.assertEqual((status, body), (200, b"hello from plain"))
        http_served = [W[n].counts["http"] - before[n]["http"] for n in ("p1", "p2")]
        self.assertEqual(sum(http_served), 4)
        self.assertTrue(all(n >= 1 for n in http_served), http_served)  # round-robin used both
        # The parents got absolute-form requests for plain HTTP.
        self.assertIn("GET http://127.0.0.1:%d/hello?0" % W["plain"].port, W["p1"].targets + W["p2"].targets)
        url = "https://www.files.test:%d/hello" % W["tls"].port
        for _ in range(2):
            code, status, headers, body, err = curl("-x", W["parents"].proxy, "--cacert",
                                                    os.path.join(W["ca"], "root.pem"), url)
            self.assertEqual((code, status, body), (0, 200, b"hello from files"), err)
        connects = [W[n].counts["connect"] - before[n]["connect"] for n in ("p1", "p2")]
        self.assertGreaterEqual(sum(connects), 1)  # bumped: a CONNECT tunnel through a parent
        self.assertIn("CONNECT www.files.test:%d" % W["tls"].port, W["p1"].targets + W["p2"].targets)

    def test_direct_hosts_skip_the_parents(self):
        before = W["p1"].counts["http"] + W["p2"].counts["http"]
        status, h, body = get("/hello", proxy="parents")  # 127.0.0.1: through a parent
        conn = http.client.HTTPConnection("127.0.0.1", W["parents"].port, timeout=30)
        conn.request("GET", "http://www.direct.test:%d/hello" % W["plain"].port)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"hello from plain"))
        conn.close()
        self.assertEqual(W["p1"].counts["http"] + W["p2"].counts["http"], before + 1)

    def test_parent_hosts_send_only_those_through_the_parents(self):
        def fetch(host):
            conn = http.client.HTTPConnection("127.0.0.1", W["some"].port, timeout=30)
            conn.request("GET", "http://%s:%d/hello" % (host, W["plain"].port))
            r = conn.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"hello from plain"))
            conn.close()
        fetch("www.via.test")
        fetch("via.test")
        self.assertEqual(W["h1"].counts["http"], 2)
        fetch("www.direct.test")      # not listed: direct
        fetch("www.via.test.evil.test")  # anchored: a name ending elsewhere is not below .via.test
        self.assertEqual(W["h1"].counts["http"], 2)

    def test_host_hash_keeps_a_host_on_one_parent(self):
        for i in range(6):
            status, h, body = get("/hello?%d" % i, proxy="hashing")
            self.assertEqual(status, 200)
        served = sorted([W["p3"].counts["http"], W["p4"].counts["http"]])
        self.assertEqual(served, [0, 6])

    def test_killed_parent_fails_no_new_request(self):
        results = []
        t0 = time.time()
        killed_at = None
        while time.time() - t0 < 4:
            if killed_at is None and time.time() - t0 > 1:
                W["f1"].kill()
                killed_at = time.time()
            start = time.time()
            try:
                status, h, body = get("/hello", proxy="failover")
                ok = status == 200 and body == b"hello from plain"
            except OSError:
                ok = False
            results.append((start, ok))
        after = [ok for start, ok in results if start > killed_at]
        self.assertGreater(len(after), 20)
        # Every request that started after the kill succeeded: a refused connection to f1 fails
        # over to f2 within the request, and the health check keeps f1 out afterwards.
        self.assertTrue(all(after), "%d of %d failed" % (after.count(False), len(after)))
        self.assertGreater(W["f2"].counts["http"], len(after) - 1)
        self.assertEqual(W["failover"].metric("parent_down"), 1)
        # f1's failures (and failed health checks) are parent failures, not unreachable origins.
        self.assertEqual(W["failover"].metric("upstream_unreachable"), 0)

    def test_least_connections_avoids_the_parent_holding_a_tunnel(self):
        # A spliced (bypassed) tunnel stays open through one parent...
        tunnel, answer = connect_tunnel(W["leastconn"].port, "www.bank.test:%d" % W["bank"].port)
        try:
            self.assertIn(b" 200 ", answer)
            busy = "l1" if W["l1"].counts["connect"] else "l2"
            idle = "l2" if busy == "l1" else "l1"
            self.assertEqual(W[busy].counts["connect"], 1)
            # ...so every new request goes to the other one while it lasts. One client connection:
            # each request's parent connection (closed by the parent) is released before the next
            # request is read. With a new client connection per request, the next one could reach
            # the other worker before the previous response's parent connection was released.
            conn = http.client.HTTPConnection("127.0.0.1", W["leastconn"].port, timeout=30)
            for i in range(4):
                conn.request("GET", "http://127.0.0.1:%d/hello?%d" % (W["plain"].port, i))
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            conn.close()
            self.assertEqual((W[busy].counts["http"], W[idle].counts["http"]), (0, 4))
        finally:
            tunnel.close()

    def test_a_parent_refusing_a_tunnel_is_answered_not_failed_over(self):
        url = "https://www.files.test:%d/hello" % W["tls"].port
        code, status, headers, body, err = curl("-x", W["refusing"].proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                                                url)
        self.assertEqual(status, 502, err)
        self.assertIn("x-vigil-reason: parent_refused", headers.lower())
        self.assertIn(b"403 Forbidden by policy", body)
        self.assertEqual(W["refusing"].metric("parent_down"), 0)  # it works; it said no

    def test_private_address_literals_are_refused_before_any_parent(self):
        before = W["p1"].counts["http"]
        status, h, body = get("/hello", proxy="strict")  # http://127.0.0.1:PORT/hello
        self.assertEqual(status, 403)
        self.assertEqual(h.get("x-vigil-reason"), "private_destination")
        self.assertEqual(W["p1"].counts["http"], before)
        # A name is the parent's to resolve (this one resolves it to 127.0.0.1).
        conn = http.client.HTTPConnection("127.0.0.1", W["strict"].port, timeout=30)
        conn.request("GET", "http://www.named.test:%d/hello" % W["plain"].port)
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"hello from plain"))
        conn.close()
        self.assertEqual(W["p1"].counts["http"], before + 1)

    def test_all_parents_down(self):
        status, h, body = get("/hello", proxy="no_parent")
        self.assertEqual(status, 502)
        self.assertEqual(h.get("x-vigil-reason"), "parent_unavailable")
        self.assertIn(b"none of the parent proxies could be reached", body)
        status, h, body = get("/hello", proxy="fallback")  # upstream.direct_fallback = true
        self.assertEqual((status, body), (200, b"hello from plain"))
        # One request failed, once, whatever the health checks of the dead parent meanwhile met;
        # the one that went direct did not fail.
        self.assertEqual(W["no_parent"].metric("upstream_unreachable"), 1)
        self.assertEqual(W["fallback"].metric("upstream_unreachable"), 0)
        self.assertGreaterEqual(W["no_parent"].metric("parent_failovers"), 1)


class Config(unittest.TestCase):
    def check(self, *sets):
        args = [VIGIL, "--check-config", "--ca-dir", W["ca"]]
        for s in sets:
            args += ["--set", s]
        return subprocess.run(args, capture_output=True, text=True)

    def test_rates_in_units_are_accepted(self):
        for value in ('"2MB"', '"512KiB/s"', '"10Mbit"', "1048576", "0"):
            p = self.check("limits.client_rate=" + value)
            self.assertEqual(p.returncode, 0, value + ": " + p.stderr)
        p = self.check('limits.group_rate={ guests = "1MB", staff = 2000000 }', "compress.enabled=false",
                       "compress.https=true", "compress.min_bytes=256",
                       'upstream.parents=["proxy1.corp:3128", { address = "10.0.0.5:8080", name = "dc2" }]',
                       'upstream.selection="least-connections"', "upstream.health_interval=10", "upstream.direct_fallback=true",
                       'upstream.direct_hosts=["intranet.example", ".corp.example"]')
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_bad_rates_are_refused_with_the_key(self):
        for value, why in (('"fast"', "expected a rate"), ('"5 parsecs"', "unknown unit"), ("12", "between 1024"),
                           ('"100B"', "smallest limit"), ("true", "expected bytes per second")):
            p = self.check("limits.client_rate=" + value)
            self.assertNotEqual(p.returncode, 0, value)
            self.assertIn("limits.client_rate", p.stderr)
            self.assertIn(why, p.stderr)
        p = self.check('limits.group_rate={ guests = "lots" }')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("limits.group_rate.guests", p.stderr)
        p = self.check('limits.group_rate="1MB"')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("expected a table", p.stderr)
        for setting, why in (('upstream.parents=["proxy1.corp"]', "is not host:port"),
                             ('upstream.parents=[{ addr = "a:1" }]', "unknown key"),
                             ('upstream.selection="fastest"', "least-connections"),
                             ('upstream.direct_hosts=["*.corp.example"]', "no patterns")):
            p = self.check(setting)
            self.assertNotEqual(p.returncode, 0, setting)
            self.assertIn(setting.split("=")[0], p.stderr)
            self.assertIn(why, p.stderr)


class Counters(unittest.TestCase):
    def test_waits_are_counted(self):
        # Runs after ClientRate (unittest orders classes by name): that gateway has throttled.
        code, counters = W["vigil"].stop()
        self.assertEqual(code, 0)
        self.assertGreater(counters["throttled"], 0)
        self.assertGreater(counters["throttled_ms"], 1000)


if __name__ == "__main__":
    unittest.main()
