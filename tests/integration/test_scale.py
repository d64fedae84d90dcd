"""Scale out (issue 26) with real HAProxy and rsyslog on loopback: the PROXY protocol names the
client, signed ruleset bundles reach every gateway, /readyz drains a gateway with no failed
request, and the failover run: bumped requests through HAProxy to two gateways, one killed
with SIGKILL and restarted, the collector stopped for 10 s and started again; then every
answered request must have exactly one record in the central trail and every chain verifies.
The numbers are printed (docs/scale-out.md quotes them)."""
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import Origin, Pki, Vigil, VIGIL_CA, make_workdir, remove_workdir, run
from identity_servers import free_port
from scale_servers import Haproxy, Rsyslog

BIN = os.path.dirname(VIGIL_CA)
RULES, AUDIT = os.path.join(BIN, "vigil-rules"), os.path.join(BIN, "vigil-audit")
W = {}


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Scale test"])
    pki = W["pki"] = Pki(d)
    W["good"] = Origin("good", *pki.leaf("good", "good.test"))
    W["hosts"] = os.path.join(d, "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")


def tearDownModule():
    W["good"].close()
    remove_workdir(W["dir"])


def gateway(name, port, admin, *extra):
    """A gateway behind the balancer: fixed ports (HAProxy's configuration names them), PROXY v2."""
    return Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
        "--listen", "127.0.0.1:%d" % port, "--set", 'admin.listen="127.0.0.1:%d"' % admin,
        "--set", 'proxy.proxy_protocol="v2"', "--set", 'proxy.trusted_balancers=["127.0.0.1/32"]',
        "--set", 'proxy.allow_clients=["127.0.0.0/8"]',
        "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d]" % W["good"].port,
        "--audit", os.path.join(W["dir"], name + "-audit.db")] + list(extra))


def bumped(proxy_port, path="/hello", interface=None, timeout=20):
    """curl through the balancer: (exit code, status, transaction id)."""
    args = ["curl", "-sS", "-o", "/dev/null", "-D", "-", "--max-time", str(timeout), "-x",
            "http://127.0.0.1:%d" % proxy_port, "--cacert", os.path.join(W["ca"], "root.pem"),
            "https://good.test:%d%s" % (W["good"].port, path)]
    if interface:
        args[1:1] = ["--interface", interface]
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10)
    statuses = re.findall(r"^HTTP/\S+ (\d+)", p.stdout, re.M)
    txid = re.search(r"^X-Vigil-Transaction: (\S+)", p.stdout, re.M | re.I)
    return p.returncode, int(statuses[-1]) if statuses else 0, txid.group(1) if txid else None


def metric(admin_port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5) as r:
        m = re.search(r"^vigil_%s (\S+)$" % name, r.read().decode(), re.M)
    return float(m.group(1)) if m else None


def readyz(admin_port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin_port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class ProxyProtocolTest(unittest.TestCase):
    def test_the_balancers_header_names_the_client(self):
        port, admin = free_port(), free_port()
        g = gateway("pp", port, admin, "--set", 'proxy.allow_clients=["127.0.0.2/32"]')
        ha = Haproxy(W["dir"], [(port, admin)], name="haproxy-pp")
        try:
            wait_for(lambda: bumped(ha.port, interface="127.0.0.2")[1] == 200, 10, "the balancer")
            # proxy.allow_clients names 127.0.0.2 only: the balancer itself (127.0.0.1) is not a
            # client, and a client at 127.0.0.3 is refused by the address in the header.
            self.assertNotEqual(bumped(ha.port, interface="127.0.0.3")[1], 200)
            # Straight to the gateway, without a header: refused, from a trusted address or not.
            self.assertNotEqual(bumped(port)[1], 200)
            self.assertNotEqual(bumped(port, interface="127.0.0.2")[1], 200)
        finally:
            ha.close()
            g.stop()
        out = subprocess.run([AUDIT, "--db", os.path.join(W["dir"], "pp-audit.db"), "query", "--json", "--limit",
                              "100"], capture_output=True, text=True).stdout
        recs = [r for r in json.loads(out) if r["kind"] != "system"]
        # Every transaction is the header's client; the balancer's own address never is one.
        self.assertEqual({r["client_ip"] for r in recs if r["kind"] == "transaction"}, {"127.0.0.2"})
        self.assertIn("127.0.0.3", {r["client_ip"] for r in recs if r["kind"] == "refused"})
        log = g.read_log()
        self.assertIn("refused: no PROXY header from the balancer", log)
        self.assertIn("refused: a PROXY header is expected, and only from proxy.trusted_balancers", log)
        self.assertIn("client 127.0.0.3 is not in proxy.allow_clients", log)


class BundleTest(unittest.TestCase):
    def test_signed_bundles_reach_the_gateway_never_backwards(self):
        d = os.path.join(W["dir"], "bundles")
        os.makedirs(d)
        key, other_key = os.path.join(d, "signing.key"), os.path.join(d, "other.key")
        for k in (key, other_key):
            run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", k])
        pub = os.path.join(d, "publisher.db")
        run([RULES, "--db", pub, "init"])
        run([RULES, "--db", pub, "add", "category", "blocked"])
        run([RULES, "--db", pub, "add", "policy", "block-blocked", "--action", "block", "--category", "blocked"])
        out = run([RULES, "--db", pub, "publish", "--key", key, "--out", os.path.join(d, "bundle.json")]).stdout
        source_key = re.search(r'rules.source_key = "(\S+)"', out).group(1)
        serve = os.path.join(d, "www")
        os.makedirs(serve)
        os.replace(os.path.join(d, "bundle.json"), os.path.join(serve, "bundle.json"))
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=serve)
        httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d/bundle.json" % httpd.server_address[1]
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
            "--rules", os.path.join(d, "gateway-rules.db"), "--set", 'rules.source="%s"' % url,
            "--set", 'rules.source_key="%s"' % source_key, "--set", "rules.source_interval=3600",
            "--set", "proxy.allow_private_destinations=true",
            "--set", "proxy.allowed_connect_ports=[%d]" % W["good"].port])
        try:
            first = int(re.search(r"ruleset version (\d+)", out).group(1))
            wait_for(lambda: "ruleset bundle version %d from" % first in readyz(v.admin_port)[1], 10, "the first bundle")
            self.assertEqual(bumped(v.port)[1], 200)
            # A new version, published: good.test is now blocked everywhere after the next pull.
            run([RULES, "--db", pub, "add", "host", "good.test", "--category", "blocked"])
            run([RULES, "--db", pub, "publish", "--key", key, "--out", os.path.join(serve, "bundle.json")])
            v.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: bumped(v.port)[1] == 403, 10, "the next bundle to apply")
            self.assertEqual(metric(v.admin_port, "ruleset_bundle_version"), first + 1)
            # Signed by another key: not applied, and said.
            run([RULES, "--db", pub, "remove", "host", "good.test"])
            run([RULES, "--db", pub, "publish", "--key", other_key, "--out", os.path.join(serve, "bundle.json")])
            v.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: metric(v.admin_port, "ruleset_bundle_failing") == 1, 10, "the refusal")
            self.assertIn("does not verify with rules.source_key", readyz(v.admin_port)[1])
            self.assertEqual(bumped(v.port)[1], 403)
            # An older bundle, correctly signed: never applied over a newer one.
            old = os.path.join(d, "old.db")
            run([RULES, "--db", old, "init"])
            run([RULES, "--db", old, "add", "category", "old"])
            run([RULES, "--db", old, "publish", "--key", key, "--out", os.path.join(serve, "bundle.json")])
            v.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "older than version %d" % (first + 1) in readyz(v.admin_port)[1], 10, "the older bundle refused")
            self.assertEqual(bumped(v.port)[1], 403)
            self.assertEqual(metric(v.admin_port, "ruleset_bundle_version"), first + 1)
        finally:
            v.stop()
            httpd.shutdown()


class Load:
    """Threads sending bumped requests through the balancer; a failed request is retried once."""

    def __init__(self, port, threads=4):
        self.port, self.stop_flag = port, threading.Event()
        self.answered, self.first_failures, self.retry_failures = [], 0, 0
        self.mu = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self, n):
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            path = "/hello?t=%d&i=%d" % (n, i)
            code, status, txid = bumped(self.port, path)
            if status != 200 or not txid:
                with self.mu:
                    self.first_failures += 1
                code, status, txid = bumped(self.port, path)
                if status != 200 or not txid:
                    with self.mu:
                        self.retry_failures += 1
                    continue
            with self.mu:
                self.answered.append((time.time(), txid))

    def finish(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)


class DrainTest(unittest.TestCase):
    def test_sigterm_moves_new_connections_with_no_failed_request(self):
        ports = [(free_port(), free_port()) for _ in range(2)]
        g = [gateway("d%d" % (i + 1), p, a, "--set", "proxy.drain_delay=2") for i, (p, a) in enumerate(ports)]
        ha = Haproxy(W["dir"], ports, name="haproxy-drain")
        try:
            wait_for(lambda: bumped(ha.port)[1] == 200, 10, "the balancer")
            load = Load(ha.port)
            time.sleep(2)
            before = len(load.answered)
            sigterm = time.time()
            g[1].proc.send_signal(signal.SIGTERM)
            wait_for(lambda: readyz(ports[1][1])[0] == 503, 5, "/readyz to say 503")
            code = g[1].proc.wait(timeout=60)
            drained = time.time() - sigterm
            time.sleep(1)
            load.finish()
        finally:
            ha.close()
            for x in g:
                if x.proc.poll() is None:
                    x.stop()
        print("\ndrain numbers: " + json.dumps({"requests": len(load.answered), "during_drain": len(load.answered) - before,
                                                "first_attempt_failures": load.first_failures,
                                                "sigterm_to_exit_s": round(drained, 2)}))
        self.assertEqual(code, 0)
        self.assertEqual(load.first_failures, 0)
        self.assertGreater(len(load.answered) - before, 20)
        self.assertIn("still accepting for proxy.drain_delay (2 s)", g[1].read_log())


class FailoverTest(unittest.TestCase):
    def test_kill_restart_and_collector_outage_lose_nothing(self):
        ports = [(free_port(), free_port()) for _ in range(2)]
        rs = Rsyslog(W["dir"])
        ship = ["--set", 'audit.ship="tcp://127.0.0.1:%d"' % rs.port]
        g = [gateway("g%d" % (i + 1), p, a, *ship, "--set", 'audit.ship_name="g%d"' % (i + 1))
             for i, (p, a) in enumerate(ports)]
        ha = Haproxy(W["dir"], ports)
        numbers = {}
        try:
            wait_for(lambda: bumped(ha.port)[1] == 200, 10, "the balancer")
            load = Load(ha.port)
            time.sleep(3)
            killed_at = time.time()
            g[0].proc.send_signal(signal.SIGKILL)
            g[0].proc.wait()
            time.sleep(2)
            g[0] = gateway("g1", *ports[0], *ship, "--set", 'audit.ship_name="g1"')
            time.sleep(2)
            rs.stop()
            outage = time.time()
            time.sleep(10)
            rs.start()
            numbers["collector_outage_s"] = round(time.time() - outage, 1)
            time.sleep(3)
            load.finish()
            # Every gateway catches up with the collector, then stops.
            for i, (p, a) in enumerate(ports):
                wait_for(lambda a=a: metric(a, "audit_ship_backlog") == 0, 30, "g%d to ship its backlog" % (i + 1))
            drain_started = time.time()
            for x in g:
                x.stop()
            numbers["stop_s"] = round(time.time() - drain_started, 2)
        finally:
            ha.close()
            for x in g:
                if x.proc.poll() is None:
                    x.stop()
            rs.close()
        answered = {txid for _, txid in load.answered}
        merged = subprocess.run([AUDIT, "--merged", rs.file, "verify", "--json"], capture_output=True, text=True,
                                timeout=120)
        report = json.loads(merged.stdout)
        central = subprocess.run([AUDIT, "--merged", rs.file, "export", "--format", "jsonl", "--kind", "transaction"],
                                 capture_output=True, text=True, timeout=120).stdout.splitlines()
        txids = [json.loads(line)["txid"] for line in central]
        recorded = {t for t in txids if t in answered}
        lost = answered - recorded
        # SIGKILL gives the writer no time: a record queued in the ~10 ms before it (answered, not
        # yet committed) can be lost. Those are counted; any other loss fails the test.
        lost_at_kill = {t for at, t in load.answered if t in lost and killed_at - 0.5 <= at <= killed_at + 0.1}
        numbers.update(requests=len(answered), first_attempt_failures=load.first_failures,
                       failed_after_retry=load.retry_failures, central_records=report["records"],
                       duplicates_dropped=report["duplicates"], answered_without_record=len(lost),
                       of_which_answered_just_before_the_kill=len(lost_at_kill), gateways=report["gateways"])
        print("\nscale-out numbers: " + json.dumps(numbers))
        self.assertTrue(report["verified"], report)
        self.assertGreater(len(answered), 100)
        self.assertEqual(load.retry_failures, 0)
        self.assertEqual(len(txids), len(set(txids)), "a transaction recorded twice after deduplication")
        self.assertEqual(lost - lost_at_kill, set(), numbers)
        self.assertLessEqual(len(lost_at_kill), 5, numbers)


if __name__ == "__main__":
    unittest.main()
