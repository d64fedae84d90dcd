"""Audit log through the real gateway and the real vigil-audit: a record for every kind of
decision, nothing lost at SIGTERM under load, a hash chain that catches edits, deletions and
insertions, every filter and format, tail -f, and the JSON-lines and syslog sinks."""

import json
import re
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import (BIN_DIR, Origin, Pki, Vigil, VIGIL_CA, curl, free_port, make_workdir, remove_workdir, run)

AUDIT = os.path.join(BIN_DIR, "vigil-audit")
RULES = os.path.join(BIN_DIR, "vigil-rules")
DEFAULT = os.path.join(os.path.dirname(__file__), "..", "..", "rules", "default", "default.json")
W = {}


def va(*args, check=True, db=None):
    return subprocess.run([AUDIT, "--db", db or W["audit"]] + list(args), capture_output=True, text=True,
                          check=check)


class Collector:
    """A loopback syslog collector (UDP)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except OSError:
                return
            self.messages.append(data.decode())


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = W["pki"] = Pki(d)
    W["tls"] = Origin("tls", *pki.leaf("shop", "shop.test"))
    W["bank"] = Origin("bank", *pki.leaf("bank", "www.bank.test"))
    W["plain"] = Origin("plain")
    W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", W["rules"], "init"])
    run([RULES, "--db", W["rules"], "import", DEFAULT])
    run([RULES, "--db", W["rules"], "add", "host", ".bank.test", "--category", "finance"])
    run([RULES, "--db", W["rules"], "add", "host", ".bad.test", "--category", "malware"])
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["audit"] = os.path.join(d, "audit.db")
    W["jsonl"] = os.path.join(d, "audit.jsonl")
    W["syslog"] = Collector()
    W["vigil"] = start_vigil(W["audit"], ["--set", 'audit.jsonl="%s"' % W["jsonl"],
                                          "--set", 'audit.syslog="udp://127.0.0.1:%d"' % W["syslog"].port])
    exercise()
    W["rc"], W["counters"] = W["vigil"].stop()


def start_vigil(audit_path, extra=()):
    ports = ",".join(str(W[k].port) for k in ("tls", "bank"))
    return Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
        "--rules", W["rules"], "--audit", audit_path, "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%s]" % ports] + list(extra))


def exercise():
    v = W["vigil"]
    root = os.path.join(W["ca"], "root.pem")
    W["r_plain"] = curl("-x", v.proxy, "-A", "audit-test/1.0", "http://plain.test:%d/hello?q=secret" % W["plain"].port)
    W["r_bump"] = curl("-x", v.proxy, "--cacert", root, "https://shop.test:%d/hello" % W["tls"].port)
    W["r_splice"] = curl("-x", v.proxy, "--cacert", W["pki"].ca_pem, "https://www.bank.test:%d/hello" % W["bank"].port)
    W["r_block"] = curl("-x", v.proxy, "http://www.bad.test:%d/" % W["plain"].port)
    W["r_eicar"] = curl("-x", v.proxy, "--cacert", root, "https://shop.test:%d/eicar" % W["tls"].port)
    W["r_port"] = curl("-x", v.proxy, "--cacert", root, "https://shop.test:8443/")
    W["r_down"] = curl("-x", v.proxy, "http://down.test:%d/" % free_port())


def tearDownModule():
    for k in ("tls", "bank", "plain"):
        W[k].close()
    remove_workdir(W["dir"])


def records(*filters):
    limit = () if "--limit" in filters else ("--limit", "1000")
    out = va("query", "--format", "json", *limit, *filters).stdout
    return json.loads(out)


class RecordTest(unittest.TestCase):
    def test_gateway_exited_cleanly_and_wrote_everything(self):
        self.assertEqual(W["rc"], 0)
        self.assertEqual(W["counters"]["audit_dropped"], 0)
        self.assertEqual(W["counters"]["audit_written"], len(records()))

    def test_plain_transaction(self):
        [r] = records("--host", "plain.test", "--kind", "transaction", "--status", "200")
        self.assertEqual((r["method"], r["scheme"], r["port"], r["tls_mode"]), ("GET", "http", W["plain"].port, "plain"))
        self.assertEqual(r["url"], "http://plain.test:%d/hello?q=secret" % W["plain"].port)
        self.assertEqual((r["action"], r["user_agent"], r["content_type"]), ("allow", "audit-test/1.0", "text/plain"))
        self.assertEqual(r["bytes_to_client"] > len(b"hello from plain"), True)
        self.assertEqual(r["client_ip"], "127.0.0.1")
        self.assertGreater(r["client_port"], 0)
        self.assertEqual(r["scan_result"], "clean")

    def test_bumped_transaction(self):
        [r] = records("--host", "shop.test", "--status", "200")
        self.assertEqual((r["tls_mode"], r["sni"], r["origin_cert"], r["scheme"]), ("bump", "shop.test", "ok", "https"))
        self.assertRegex(r["client_tls"], r"^TLSv1\.[23] ")
        self.assertRegex(r["origin_tls"], r"^TLSv1\.[23] ")

    def test_spliced_tunnel(self):
        [r] = records("--kind", "splice")
        self.assertEqual((r["host"], r["action"], r["category"], r["tls_mode"]), ("www.bank.test", "bypass", "finance", "splice"))
        self.assertGreater(r["bytes_to_client"], 0)
        self.assertGreater(r["bytes_from_client"], 0)

    def test_blocked_by_category_and_signature(self):
        [r] = records("--rule", "block-malware")
        self.assertEqual((r["action"], r["status"], r["category"], r["host"]), ("block", 403, "malware", "www.bad.test"))
        [e] = records("--rule", "eicar-download")
        self.assertEqual((e["action"], e["status"], e["scan_result"]), ("block", 403, "matched"))
        self.assertIn("EICAR", e["reason"])

    def test_transaction_ids_on_pages_headers_and_records(self):
        # A page: its reference is the transaction ID, also in X-Vigil-Transaction.
        _, status, headers, body, _ = W["r_block"]
        self.assertEqual(status, 403)
        m = re.search(r'id="transaction">([0-9a-f-]{36})<', body.decode())
        self.assertIsNotNone(m, body[:400])
        txid = m.group(1)
        self.assertRegex(txid, r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertIn("x-vigil-transaction: %s" % txid, headers.lower())
        shown = va("show", txid).stdout
        self.assertIn("www.bad.test", shown)
        self.assertIn("block-malware", shown)
        self.assertIn("txid                " + txid, shown)
        self.assertEqual(va("show", txid.upper()).stdout, shown)  # as a person may type it
        # A relayed response carries the ID of its record too.
        _, status, headers, _, _ = W["r_plain"]
        self.assertEqual(status, 200)
        relayed = re.search(r"x-vigil-transaction: ([0-9a-f-]{36})", headers.lower()).group(1)
        [r] = records("--host", "plain.test", "--kind", "transaction", "--status", "200")
        self.assertEqual(r["txid"], relayed)
        # Every record of a transaction, refusal or tunnel has its own ID.
        ids = [r["txid"] for r in records() if r["kind"] != "system"]
        self.assertTrue(all(ids), ids)
        self.assertEqual(len(ids), len(set(ids)))
        p = va("show", "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no record with transaction ID", p.stderr)

    def test_refused_and_upstream_error(self):
        [r] = records("--url-contains", ":8443")
        self.assertEqual((r["action"], r["status"], r["method"]), ("refuse", 403, "CONNECT"))
        self.assertIn("port_not_allowed", r["reason"])
        [e] = records("--host", "down.test")
        self.assertEqual((e["action"], e["status"]), ("error", 502))
        self.assertIn("connection_refused", e["reason"])

    def test_system_events(self):
        actions = [r["action"] for r in records("--kind", "system")]
        self.assertEqual(sorted(actions), ["start", "stop"])


class OptionsTest(unittest.TestCase):
    def test_unknown_options_are_refused(self):
        # `query --conn C32` used to answer with every record, unfiltered.
        for args in (["query", "--conn", "C32"], ["verify", "--user", "x"], ["tail", "--format", "json"],
                     ["stats", "--by", "host", "--tpo", "3"]):
            with self.subTest(args=args):
                p = va(*args, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("unknown option", p.stderr)
                self.assertEqual(p.stdout, "")


class ChainTest(unittest.TestCase):
    def copy(self, name):
        path = os.path.join(W["dir"], name)
        shutil.copy(W["audit"], path)
        return path

    def test_verify_passes_then_catches_edit_delete_insert(self):
        out = va("verify")
        self.assertIn("hash chain is intact", out.stdout)
        n = len(records())
        mid = records()[n // 2]["id"]
        cases = {
            "edited": "UPDATE records SET action = 'allow' WHERE id = %d" % mid,
            "deleted": "DELETE FROM records WHERE id = %d" % mid,
            "inserted": "INSERT INTO records(id, ts_ms, kind, prev_hash, hash) VALUES (%d, 1, 'transaction', 'x', 'y')"
                        % (records()[0]["id"] + 100),
        }
        for name, sql in cases.items():
            with self.subTest(tamper=name):
                path = self.copy(name + ".db")
                db = sqlite3.connect(path)
                db.execute(sql)
                db.commit()
                db.close()
                p = va("verify", check=False, db=path)
                self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
                expected = mid if name == "edited" else (mid + 1 if name == "deleted" else records()[0]["id"] + 100)
                self.assertIn("row %d " % expected, p.stdout)

    def test_prune_leaves_a_verifiable_chain(self):
        path = self.copy("prune.db")
        rows = records()
        cutoff = rows[len(rows) // 2]["ts_ms"] + 1
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cutoff / 1000 + 1))
        p = va("prune", "--before", iso, db=path)
        self.assertIn("pruned", p.stdout)
        self.assertIn("intact", va("verify", db=path).stdout)
        # New records appended by a gateway after the prune still chain on.
        v = start_vigil(path)
        curl("-x", v.proxy, "http://plain.test:%d/hello" % W["plain"].port)
        v.stop()
        self.assertIn("intact", va("verify", db=path).stdout)


class QueryTest(unittest.TestCase):
    def test_filters(self):
        allr = records()
        self.assertEqual(len(records("--since", "1h")), len(allr))
        self.assertEqual(records("--until", "1h"), [])
        self.assertEqual(records("--since", "2000-01-01", "--until", "2000-01-02"), [])
        self.assertTrue(all(r["client_ip"] == "127.0.0.1" for r in records("--client", "127.0.0.1")))
        self.assertEqual({r["host"] for r in records("--host", "test")} >= {"plain.test", "shop.test"}, True)
        self.assertEqual(records("--host", "lain.test"), [])  # suffix match is label-anchored
        self.assertEqual({r["action"] for r in records("--action", "block")}, {"block"})
        self.assertEqual({r["category"] for r in records("--category", "malware")}, {"malware"})
        self.assertEqual(len(records("--url-contains", "q=secret")), 1)
        self.assertEqual(records("--user", "nobody"), [])
        self.assertEqual(len(records("--limit", "2")), 2)

    def test_formats(self):
        table = va("query").stdout.splitlines()
        self.assertTrue(table[0].startswith("ID"))
        self.assertNotIn("\033[", "\n".join(table))  # no colour when not a terminal
        csv_out = va("query", "--format", "csv").stdout.splitlines()
        self.assertTrue(csv_out[0].startswith("id,ts_ms,duration_ms,kind"))
        self.assertEqual(len(csv_out), len(records()) + 1)
        jsonl = va("export", "--format", "jsonl").stdout.splitlines()
        self.assertEqual(len(jsonl), len(records()))
        self.assertEqual(json.loads(jsonl[0])["action"], "start")
        self.assertIn("id,ts_ms", va("export", "--format", "csv", "--action", "block").stdout)
        shown = va("show", str(records("--rule", "block-malware")[0]["id"])).stdout
        self.assertIn("category            malware", shown)

    def test_stats(self):
        out = va("stats", "--by", "action").stdout
        self.assertRegex(out, r"block\s+2\s+2")
        out = va("stats", "--by", "host", "--top", "1").stdout.splitlines()
        self.assertEqual(len(out), 2)
        self.assertIn("T", va("stats", "--by", "hour").stdout)
        # The hourly roll-ups the gateway wrote answer exactly what counting the rows does.
        for by in ("host", "category", "user", "rule", "action", "hour"):
            for window in ([], ["--since", "2h"], ["--since", "1d", "--until", "1m"]):
                with self.subTest(by=by, window=window):
                    self.assertEqual(va("stats", "--by", by, *window).stdout,
                                     va("stats", "--by", by, "--exact", *window).stdout)
        self.assertIn("hash chain is intact", va("verify").stdout)  # verify checks the roll-ups too

    def test_bad_input_is_one_line(self):
        for args in (["query", "--action", "explode"], ["query", "--since", "yesterday-ish"],
                     ["stats", "--by", "colour"], ["query", "--host", "bad host"], ["frobnicate"]):
            with self.subTest(args=args):
                p = va(*args, check=False)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = va("query", check=False, db=W["rules"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not a Vigil audit log", p.stderr)
        p = va("query", check=False, db=os.path.join(W["dir"], "missing.db"))
        self.assertNotEqual(p.returncode, 0)

    def test_review_never_writes(self):
        before = os.stat(W["audit"]).st_mtime_ns
        va("query")
        va("stats", "--by", "rule")
        va("verify")
        self.assertEqual(os.stat(W["audit"]).st_mtime_ns, before)


class SinkTest(unittest.TestCase):
    def test_jsonl_and_syslog_carry_the_same_records(self):
        with open(W["jsonl"]) as f:
            lines = [json.loads(l) for l in f]
        db = [r for r in json.loads(va("export", "--format", "jsonl").stdout.replace("\n", ",").rstrip(",").join("[]"))]
        strip = lambda r: {k: v for k, v in r.items() if k != "id"}
        self.assertEqual([strip(r) for r in db], lines)
        time.sleep(0.2)
        msgs = W["syslog"].messages
        self.assertEqual(len(msgs), len(lines))
        first = msgs[0]
        self.assertRegex(first, r"^<1[0-9]{2}>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ vigil \d+ system - ")
        self.assertEqual(json.loads(first.split(" - ", 1)[1])["action"], "start")


class LiveTest(unittest.TestCase):
    def test_tail_f_and_sigterm_under_load_loses_nothing(self):
        path = os.path.join(W["dir"], "live.db")
        v = start_vigil(path, ["--set", 'audit.url_mode="strip-query"'])
        tail = subprocess.Popen([AUDIT, "--db", path, "tail", "-f"], stdout=subprocess.PIPE, text=True)
        curl("-x", v.proxy, "http://plain.test:%d/hello?token=abc" % W["plain"].port)
        deadline = time.time() + 10
        seen = ""
        while "plain.test" not in seen and time.time() < deadline:
            seen += tail.stdout.readline()
        tail.kill()
        self.assertIn("http://plain.test:%d/hello" % W["plain"].port, seen)
        self.assertNotIn("token=abc", seen)  # audit.url_mode = strip-query

        answered = []
        stop = threading.Event()

        def load():
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": v.proxy}))
            while not stop.is_set():
                try:
                    with opener.open("http://plain.test:%d/hello" % W["plain"].port, timeout=10) as r:
                        r.read()
                        answered.append(r.status)
                except Exception:
                    return  # refused after shutdown began: not answered, not recorded
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        v.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        rc, counters = v.stop()
        self.assertEqual(rc, 0)
        self.assertGreater(len(answered), 20)
        rows = json.loads(va("query", "--format", "json", "--limit", "100000", "--kind", "transaction",
                             "--status", "200", db=path).stdout)
        # Nothing lost: a row for every answer the clients got (+ the tail -f request). Seen once
        # in ~20 runs (session 4, not yet explained): one row more than the clients counted,
        # presumably a response in flight at shutdown that the gateway recorded while its
        # client's read failed. At most one such per load thread.
        self.assertGreaterEqual(len(rows), len(answered) + 1)
        self.assertLessEqual(len(rows), len(answered) + 1 + len(threads))
        self.assertIn("intact", va("verify", db=path).stdout)


if __name__ == "__main__":
    unittest.main()


def small_disk(test, name):
    """Mounts a 512 KiB tmpfs for an audit log (root only); the caller unmounts it."""
    mnt = os.path.join(W["dir"], name)
    os.makedirs(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", mnt], capture_output=True, text=True)
    if p.returncode != 0:
        test.skipTest("needs root to mount a small tmpfs: " + p.stderr.strip())
    return mnt


def fill_disk(mnt):
    """Fills the disk to the last block; returns the filler file."""
    filler = os.path.join(mnt, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    os.close(fd)
    return filler


class FailureTest(unittest.TestCase):
    """A disk that fills up: fail-closed stops serving, nothing is lost, service resumes."""

    def test_disk_full_is_fail_closed_and_loses_nothing(self):
        mnt = small_disk(self, "small")
        try:
            path = os.path.join(mnt, "audit.db")
            v = start_vigil(path)
            url = "http://plain.test:%d/hello" % W["plain"].port
            self.assertEqual(curl("-x", v.proxy, url)[1], 200)
            filler = fill_disk(mnt)
            statuses = []
            for _ in range(40):
                statuses.append(curl("-x", v.proxy, url)[1])
                if statuses[-1] == 503:
                    break
                time.sleep(0.1)
            self.assertEqual(statuses[-1], 503, statuses)  # fail-closed: no unaudited service
            code, status, headers, body, err = curl("-x", v.proxy, url)
            self.assertIn("X-Vigil-Reason: audit_unavailable", headers)
            os.unlink(filler)
            for _ in range(50):
                if curl("-x", v.proxy, url)[1] == 200:
                    break
                time.sleep(0.2)
            self.assertEqual(curl("-x", v.proxy, url)[1], 200)
            rc, counters = v.stop()
            self.assertEqual(rc, 0)
            self.assertGreater(counters["audit_failures"], 0)
            self.assertEqual(counters["audit_dropped"], 0)
            rows = records_of(path)
            answered = len(statuses) + 4  # the first request, the loop, the 503 check, the last two
            self.assertGreaterEqual(len([r for r in rows if r["kind"] == "transaction"]), answered - 1)
            self.assertIn("intact", va("verify", db=path).stdout)
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)


class FailOpenTest(unittest.TestCase):
    """fail-open keeps serving while writes fail; with overflow = drop, what does not fit is
    dropped and counted, never silently."""

    def test_fail_open_and_drop(self):
        mnt = small_disk(self, "small2")
        try:
            path = os.path.join(mnt, "audit.db")
            v = start_vigil(path, ["--set", 'audit.on_failure="fail-open"', "--set", 'audit.overflow="drop"',
                                   "--set", "audit.queue_limit=16"])
            url = "http://plain.test:%d/hello" % W["plain"].port
            self.assertEqual(curl("-x", v.proxy, url)[1], 200)
            fill_disk(mnt)
            statuses = [curl("-x", v.proxy, url)[1] for _ in range(40)]
            self.assertEqual(set(statuses), {200})  # fail-open: service continues
            code, status, headers, body, err = curl("http://127.0.0.1:%d/metrics" % v.admin_port)
            self.assertRegex(body.decode(), r"vigil_audit_healthy 0")
            rc, counters = v.stop(timeout=60)
            self.assertEqual(rc, 0)
            self.assertGreater(counters["audit_dropped"], 0)
            self.assertGreater(counters["audit_failures"], 0)
        finally:
            subprocess.run(["umount", "-l", mnt], capture_output=True)


def records_of(path):
    return json.loads(va("query", "--format", "json", "--limit", "100000", db=path).stdout)
