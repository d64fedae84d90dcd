"""The HTTP cache through the real gateway: fresh answers served without the origin (plain and
inside the bump), what must never be stored, revalidation with 304s, Vary, invalidation by
unsafe methods, the client's own conditionals, re-scanning under a newer ruleset, the disk
store across restarts (a corrupt file discarded), an unwritable directory degrading to
pass-through, and the audit log's cache column."""

import glob
import json
import os
import signal
import sqlite3
import subprocess
import time
import unittest

from harness import BIN_DIR, Origin, Pki, Vigil, VIGIL_CA, curl, make_workdir, remove_workdir, run

RULES = os.path.join(BIN_DIR, "vigil-rules")
W = {}


def vr(*args):
    return subprocess.run([RULES, "--db", W["db"], "--actor", "tests"] + list(args), capture_output=True, text=True,
                          check=True)


def start(name, *extra):
    W[name] = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem,
                    extra_args=W["common"] + list(extra))
    return W[name]


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["plain"] = Origin("plain")
    W["tls"] = Origin("tls", *pki.leaf("tls", "www.cached.test"))
    W["db"] = os.path.join(d, "rules.db")
    vr("init")
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["audit"] = os.path.join(d, "audit.db")
    W["common"] = ["--rules", W["db"], "--set", "proxy.allow_private_destinations=true",
                   "--set", "proxy.allowed_connect_ports=[%d]" % W["tls"].port,
                   "--set", "rules.reload_interval=1"]
    start("vigil", "--audit", W["audit"])


def tearDownModule():
    for k, v in W.items():
        if isinstance(v, Vigil):
            v.stop()
    W["plain"].close()
    W["tls"].close()
    remove_workdir(W["dir"])


def url(path, tls=False):
    if tls:
        return "https://www.cached.test:%d%s" % (W["tls"].port, path)
    return "http://www.cached.test:%d%s" % (W["plain"].port, path)


def get(path, *args, tls=False, via="vigil"):
    extra = ["--cacert", os.path.join(W["ca"], "root.pem")] if tls else []
    code, status, headers, body, err = curl("-x", W[via].proxy, *extra, *args, url(path, tls))
    assert code == 0, err
    return status, headers, body.decode(errors="replace")


def asked(path, origin="plain"):
    return W[origin].stats.get("c:" + path.split("?")[0], 0)


def header(headers, name):
    for line in headers.splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


class FreshnessTest(unittest.TestCase):
    def test_fresh_response_is_served_from_the_cache(self):
        s1, h1, b1 = get("/c/fresh?cc=max-age=60")
        s2, h2, b2 = get("/c/fresh?cc=max-age=60")
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(b1, b2)
        self.assertIn("#1", b2)
        self.assertEqual(asked("/c/fresh"), 1)
        self.assertIsNotNone(header(h2, "Age"))
        self.assertEqual(header(h2, "Content-Length"), str(len(b2)))

    def test_bumped_https_is_cached_too(self):
        s1, h1, b1 = get("/c/tls?cc=max-age=60", tls=True)
        s2, h2, b2 = get("/c/tls?cc=max-age=60", tls=True)
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(b1, b2)
        self.assertEqual(asked("/c/tls", "tls"), 1)

    def test_stale_response_without_validator_is_fetched_again(self):
        get("/c/short?cc=max-age=1")
        time.sleep(2.2)
        s, h, b = get("/c/short?cc=max-age=1")
        self.assertIn("#2", b)
        self.assertEqual(asked("/c/short"), 2)

    def test_heuristic_freshness_from_last_modified(self):
        get("/c/heuristic?lm=100000")  # modified a day ago: fresh for a tenth of that
        s, h, b = get("/c/heuristic?lm=100000")
        self.assertIn("#1", b)
        self.assertEqual(asked("/c/heuristic"), 1)

    def test_what_is_never_stored(self):
        cases = {
            "/c/nostore?cc=no-store": (),
            "/c/private?cc=private,max-age=60": (),
            "/c/cookie?cc=max-age=60&cookie=1": (),
            "/c/auth?cc=max-age=60": ("-H", "Authorization: Basic dTpw"),
            "/c/reqnostore?cc=max-age=60": ("-H", "Cache-Control: no-store"),
            "/c/nofreshness": (),
        }
        for path, args in cases.items():
            for _ in range(2):
                status, h, b = get(path, *args)
                self.assertEqual(status, 200)
            self.assertEqual(asked(path), 2, path)

    def test_request_no_cache_and_max_age_zero_go_to_the_origin(self):
        get("/c/reqnc?cc=max-age=60")
        get("/c/reqnc?cc=max-age=60", "-H", "Cache-Control: no-cache")
        get("/c/reqnc?cc=max-age=60", "-H", "Pragma: no-cache")
        self.assertEqual(asked("/c/reqnc"), 3)
        # Without validators the fresh copy replaced the old one; max-age=0 asks again.
        get("/c/reqnc?cc=max-age=60", "-H", "Cache-Control: max-age=0")
        self.assertEqual(asked("/c/reqnc"), 4)
        s, h, b = get("/c/reqnc?cc=max-age=60")
        self.assertIn("#4", b)

    def test_only_if_cached_miss_is_504(self):
        status, h, b = get("/c/oic?cc=max-age=60", "-H", "Cache-Control: only-if-cached")
        self.assertEqual(status, 504)
        self.assertEqual(asked("/c/oic"), 0)
        get("/c/oic?cc=max-age=60")
        status, h, b = get("/c/oic?cc=max-age=60", "-H", "Cache-Control: only-if-cached")
        self.assertEqual(status, 200)

    def test_head_is_answered_from_a_stored_get(self):
        s, h, b = get("/c/head?cc=max-age=60")
        status, h2, b2 = get("/c/head?cc=max-age=60", "-I")
        self.assertEqual(status, 200)
        self.assertEqual(header(h2, "Content-Length"), str(len(b)))
        self.assertEqual(asked("/c/head"), 1)


class RevalidationTest(unittest.TestCase):
    def test_stale_response_is_revalidated_with_its_etag(self):
        s1, h1, b1 = get("/c/etag?cc=max-age=0&etag=e1")
        s2, h2, b2 = get("/c/etag?cc=max-age=0&etag=e1")
        self.assertEqual((s1, s2), (200, 200))
        self.assertEqual(b1, b2)  # the stored body: the origin sent only a 304
        self.assertEqual(W["plain"].httpd.seen["/c/etag"].get("if-none-match"), '"e1"')
        self.assertEqual(asked("/c/etag"), 2)
        # The 304's fields replace the stored ones.
        self.assertEqual(header(h2, "X-Origin-Answer"), "304 #2")

    def test_no_cache_response_is_revalidated_every_time_with_last_modified(self):
        get("/c/lm?cc=no-cache&lm=5000")
        s, h, b = get("/c/lm?cc=no-cache&lm=5000")
        self.assertIn("#1", b)
        self.assertIn("if-modified-since", W["plain"].httpd.seen["/c/lm"])
        self.assertEqual(asked("/c/lm"), 2)

    def test_clients_own_conditional_is_answered_from_the_cache(self):
        get("/c/cond?cc=max-age=60&etag=x9")
        status, h, b = get("/c/cond?cc=max-age=60&etag=x9", "-H", 'If-None-Match: "x9"')
        self.assertEqual(status, 304)
        self.assertEqual(b, "")
        status, h, b = get("/c/cond?cc=max-age=60&etag=x9", "-H", 'If-None-Match: "other"')
        self.assertEqual(status, 200)
        self.assertEqual(asked("/c/cond"), 1)


class VaryAndInvalidationTest(unittest.TestCase):
    def test_vary_keeps_one_variant_per_request_value(self):
        for lang in ("en", "fr", "en", "fr"):
            s, h, b = get("/c/vary?cc=max-age=60&vary=Accept-Language", "-H", "Accept-Language: " + lang)
            self.assertIn("lang=" + lang, b)
        self.assertEqual(asked("/c/vary"), 2)
        s, h, b = get("/c/vary?cc=max-age=60&vary=Accept-Language")  # no Accept-Language: a third variant
        self.assertIn("lang=-", b)
        self.assertEqual(asked("/c/vary"), 3)

    def test_vary_star_is_never_stored(self):
        get("/c/star?cc=max-age=60&vary=*")
        get("/c/star?cc=max-age=60&vary=*")
        self.assertEqual(asked("/c/star"), 2)

    def test_unsafe_method_invalidates_the_url_and_its_content_location(self):
        get("/c/inv?cc=max-age=60")
        get("/c/inv?alias")  # ?alias has no caching fields: not stored anyway
        code, status, h, b, err = curl("-x", W["vigil"].proxy, "-d", "x=1", url("/c/inv?cc=max-age=60"))
        self.assertEqual(status, 200)
        s, h, b = get("/c/inv?cc=max-age=60")
        self.assertIn("#3", b)  # the origin's third GET of /c/inv (the second was ?alias)
        self.assertEqual(asked("/c/inv"), 3)


class InspectionTest(unittest.TestCase):
    def test_blocked_response_is_never_stored_and_a_newer_ruleset_rescans_hits(self):
        get("/c/later?cc=max-age=600&word=plugh")
        s, h, b = get("/c/later?cc=max-age=600&word=plugh")
        self.assertEqual((s, asked("/c/later")), (200, 1))
        rescanned = W["vigil"].metric("cache_rescanned")
        vr("add", "signature", "later-word", "--target", "response_body", "--pattern", "plugh", "--action", "block")
        W["vigil"].proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            s, h, b = get("/c/later?cc=max-age=600&word=plugh")
            if s == 403:
                break
            time.sleep(0.3)
        self.assertEqual(s, 403)
        self.assertEqual(asked("/c/later"), 1)  # the stored copy was scanned again, not refetched
        self.assertGreater(W["vigil"].metric("cache_rescanned"), rescanned)
        # And a matching response is never stored: each request reaches the origin.
        for _ in range(2):
            s, h, b = get("/c/blocked?cc=max-age=600&word=plugh")
            self.assertEqual(s, 403)
        self.assertEqual(asked("/c/blocked"), 2)
        # A clean hit under the newer ruleset is re-scanned once, then carries the new version.
        get("/c/clean?cc=max-age=600")
        get("/c/clean?cc=max-age=600")
        self.assertEqual(asked("/c/clean"), 1)

    def test_audit_records_say_hit_miss_revalidated(self):
        get("/c/audit?cc=max-age=60")
        get("/c/audit?cc=max-age=60")
        get("/c/audit2?cc=max-age=0&etag=a")
        get("/c/audit2?cc=max-age=0&etag=a")
        deadline = time.time() + 10
        while time.time() < deadline:
            db = sqlite3.connect(W["audit"])
            rows = db.execute("SELECT url, cache FROM records WHERE url LIKE '%/c/audit%' ORDER BY id").fetchall()
            db.close()
            if len(rows) >= 4:
                break
            time.sleep(0.2)
        self.assertEqual([c for _, c in rows], ["MISS", "HIT", "MISS", "REVALIDATED"])
        v = subprocess.run([os.path.join(BIN_DIR, "vigil-audit"), "--db", W["audit"], "verify"], capture_output=True,
                           text=True)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        q = subprocess.run([os.path.join(BIN_DIR, "vigil-audit"), "--db", W["audit"], "query", "--cache", "REVALIDATED",
                            "--url-contains", "/c/audit", "--format", "json"], capture_output=True, text=True)
        self.assertEqual(q.returncode, 0, q.stderr)
        found = json.loads(q.stdout)
        self.assertEqual([(r["cache"], "/c/audit2" in r["url"]) for r in found], [("REVALIDATED", True)])
        self.assertGreaterEqual(W["vigil"].metric("cache_hits"), 1)
        self.assertGreaterEqual(W["vigil"].metric("cache_revalidated"), 1)


class DiskTest(unittest.TestCase):
    def test_disk_cache_survives_a_restart_and_corrupt_entries_are_discarded(self):
        cdir = os.path.join(W["dir"], "cache-disk")
        v = start("disk1", "--set", 'cache.dir="%s"' % cdir)
        get("/c/disk-a?cc=max-age=600", via="disk1")
        get("/c/disk-b?cc=max-age=600&word=" + "b" * 3000, via="disk1")
        v.stop()
        files = glob.glob(os.path.join(cdir, "*.entry"))
        self.assertEqual(len(files), 2)
        self.assertEqual(os.stat(cdir).st_mode & 0o077, 0)
        for f in files:
            self.assertEqual(os.stat(f).st_mode & 0o077, 0)
        big = max(files, key=os.path.getsize)
        with open(big, "r+b") as f:  # one flipped byte in the body
            f.seek(os.path.getsize(big) - 100)
            f.write(b"X")
        v2 = start("disk2", "--set", 'cache.dir="%s"' % cdir)
        s, h, b = get("/c/disk-a?cc=max-age=600", via="disk2")
        self.assertIn("#1", b)
        self.assertEqual(asked("/c/disk-a"), 1)  # served from disk by the new process
        s, h, b = get("/c/disk-b?cc=max-age=600&word=" + "b" * 3000, via="disk2")
        self.assertEqual(s, 200)
        self.assertIn("#2", b)  # never the corrupt copy: fetched again
        self.assertNotIn("X", b)
        self.assertEqual(v2.metric("cache_corrupt"), 1)
        self.assertIn("discarded", v2.read_log())

    def test_disk_read_does_not_hold_up_the_worker(self):
        # One worker. The stored file is swapped for a FIFO, so reading it blocks until the
        # test writes into it: a second client must be served meanwhile, and the HIT then
        # completes with the stored body.
        cdir = os.path.join(W["dir"], "cache-slow")
        v = start("slow1", "--threads", "1", "--set", 'cache.dir="%s"' % cdir)
        get("/c/slow-a?cc=max-age=600", via="slow1")
        v.stop()
        [entry] = glob.glob(os.path.join(cdir, "*.entry"))
        v2 = start("slow2", "--threads", "1", "--set", 'cache.dir="%s"' % cdir)
        with open(entry, "rb") as f:
            stored = f.read()
        os.remove(entry)
        os.mkfifo(entry, 0o600)
        hit = subprocess.Popen(["curl", "-sS", "--max-time", "30", "-x", v2.proxy, url("/c/slow-a?cc=max-age=600")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(0.5)  # the HIT is now waiting for the file
            self.assertIsNone(hit.poll())
            code, status, _, body, err = curl("-x", v2.proxy, url("/c/slow-other?cc=no-store"), timeout=5)
            self.assertEqual((code, status), (0, 200), err)
            self.assertIsNone(hit.poll())
        finally:
            with open(entry, "wb") as fifo:  # unblocks the reader
                fifo.write(stored)
            out, err = hit.communicate(timeout=30)
        self.assertEqual(hit.returncode, 0, err)
        self.assertIn(b"#1", out)
        self.assertEqual(asked("/c/slow-a"), 1)  # served from the stored copy, not the origin
        self.assertEqual(v2.metric("cache_hits"), 1)

    def test_unwritable_cache_directory_degrades_to_pass_through(self):
        blocker = os.path.join(W["dir"], "not-a-dir")
        with open(blocker, "w") as f:
            f.write("a file where the cache directory should be")
        v = start("broken", "--set", 'cache.dir="%s/cache"' % blocker)
        for _ in range(3):
            s, h, b = get("/c/broken?cc=max-age=600", via="broken")
            self.assertEqual(s, 200)
            time.sleep(0.3)  # let the writer fail
        self.assertEqual(asked("/c/broken"), 3)
        self.assertEqual(v.metric("cache_store_errors"), 3)
        self.assertIn("not storing responses", v.read_log())

    def test_cache_can_be_turned_off_and_bad_values_are_refused(self):
        start("off", "--set", "cache.enabled=false")
        get("/c/off?cc=max-age=60", via="off")
        get("/c/off?cc=max-age=60", via="off")
        self.assertEqual(asked("/c/off"), 2)
        bad = Vigil(W["dir"], W["ca"], extra_args=["--set", 'cache.max_bytes="lots"'], expect_start=False)
        self.assertNotEqual(bad.proc.wait(timeout=10), 0)
        self.assertIn("cache.max_bytes", bad.read_log())


if __name__ == "__main__":
    unittest.main()
