"""The web console (issue 27) in a real browser: headless Chromium driven by playwright-core
(installed from npm into the build folder) against vigil-console, after the gateway served
traffic in the test — allowed, blocked, and requests whose user agent and URL carry script.
The numbers shown are checked against vigil-audit stats; screenshots are kept in
build/test-artifacts/console-*.png."""
import json
import os
import re
import shutil
import subprocess
import time
import unittest

from harness import BIN_DIR, Origin, Pki, Vigil, VIGIL_CA, curl, make_workdir, remove_workdir, run

RULES, AUDIT = os.path.join(BIN_DIR, "vigil-rules"), os.path.join(BIN_DIR, "vigil-audit")
CONSOLE = os.path.join(BIN_DIR, "vigil-console")
ARTIFACTS = os.environ.get("VIGIL_ARTIFACTS", os.path.join(BIN_DIR, "..", "test-artifacts"))
NODE_DIR = os.path.join(BIN_DIR, "..", "node-playwright")
XSS_UA = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
XSS_RULE = '"><img src=x onerror=alert(7)>'
W = {}


def node_modules():
    """playwright-core from npm, once per build folder (the test needs no browser download:
    it drives Debian's /usr/bin/chromium)."""
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "playwright-core")):
        os.makedirs(NODE_DIR, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_DIR, "playwright-core@1"],
                       check=True, capture_output=True, timeout=300)
    return os.path.join(NODE_DIR, "node_modules")


def console_args():
    d = W["dir"]
    return ["--set", 'tls.ca_dir="%s"' % W["ca"], "--set", 'rules.path="%s"' % W["rules"],
            "--set", 'audit.path="%s"' % W["audit"], "--set", 'console.users="%s"' % os.path.join(d, "console.db")]


def setUpModule():
    if not shutil.which("chromium") or not shutil.which("npm"):
        raise unittest.SkipTest("chromium and npm are installed by `make deps`")
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Console test"])
    pki = W["pki"] = Pki(d)
    W["good"] = Origin("good", *pki.leaf("good", "good.test"))
    W["bad"] = Origin("bad", *pki.leaf("bad", "www.bad.test"))
    W["xss"] = Origin("xss", *pki.leaf("xss", "xss.test"))
    rules = W["rules"] = os.path.join(d, "rules.db")
    run([RULES, "--db", rules, "init"])
    run([RULES, "--db", rules, "add", "category", "malware", "--description", "<script>alert(3)</script> bad things"])
    run([RULES, "--db", rules, "add", "host", ".bad.test", "--category", "malware"])
    run([RULES, "--db", rules, "add", "policy", "block-malware", "--action", "block", "--category", "malware"])
    # A rule name an attacker with rule rights could choose (monitor: it does not decide).
    run([RULES, "--db", rules, "add", "policy", XSS_RULE, "--action", "monitor", "--category", "malware",
         "--priority", "200"])
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["audit"] = os.path.join(d, "audit.db")
    v = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--rules", rules, "--audit", W["audit"], "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%s]" % ",".join(str(W[k].port) for k in ("good", "bad", "xss"))])
    root = os.path.join(W["ca"], "root.pem")
    for i in range(7):
        assert curl("-x", v.proxy, "--cacert", root, "https://good.test:%d/hello?i=%d" % (W["good"].port, i))[1] == 200
    for i in range(3):
        assert curl("-x", v.proxy, "--cacert", root, "https://www.bad.test:%d/dl?i=%d" % (W["bad"].port, i))[1] == 403
    for path in ("/hello?q=%3Cscript%3Ealert(4)%3C/script%3E", "/hello?x=%22%3E%3Cimg%20src=x%20onerror=alert(5)%3E"):
        assert curl("-x", v.proxy, "--cacert", root, "-A", XSS_UA, "https://xss.test:%d%s" % (W["xss"].port, path))[1] == 200
    v.stop()
    for name, role in (("vera", "viewer"), ("ana", "analyst"), ("adam", "admin")):
        subprocess.run([CONSOLE] + console_args() + ["user", "add", name, "--role", role, "--password-file", "-"],
                       input="console-test-pw\n", text=True, check=True, capture_output=True)
    ready = os.path.join(d, "console-ready.json")
    W["log"] = open(os.path.join(d, "console.log"), "w")
    W["proc"] = subprocess.Popen([CONSOLE] + console_args() + ["--set", 'console.listen="127.0.0.1:0"', "serve",
                                                               "--ready-file", ready], stdout=W["log"], stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while not os.path.exists(ready) and time.time() < deadline:
        time.sleep(0.05)
    with open(ready) as f:
        W["port"] = json.load(f)["port"]
    os.makedirs(ARTIFACTS, exist_ok=True)
    # A browser profile that trusts the gateway's root, as the deployment kit installs it.
    home = os.path.join(d, "home")
    nssdb = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nssdb)
    run(["certutil", "-N", "-d", "sql:" + nssdb, "--empty-password"])
    run(["certutil", "-A", "-d", "sql:" + nssdb, "-t", "C,,", "-n", "Vigil console test root", "-i",
         os.path.join(W["ca"], "root.pem")])
    p = subprocess.run(["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "console_browser.js"),
                        "https://localhost:%d" % W["port"], ARTIFACTS], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, NODE_PATH=node_modules(), HOME=home))
    if p.returncode != 0:
        raise AssertionError("the browser run failed: " + p.stderr[-3000:])
    W["seen"] = json.loads(p.stdout.strip().splitlines()[-1])


def tearDownModule():
    if "proc" in W:
        W["proc"].terminate()
        W["proc"].wait(10)
        W["log"].close()
    for k in ("good", "bad", "xss"):
        if k in W:
            W[k].close()
    remove_workdir(W["dir"])


def stats(by):
    out = subprocess.run([AUDIT, "--db", W["audit"], "stats", "--by", by, "--since", "24h", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


class ConsoleTest(unittest.TestCase):
    def test_the_overview_shows_what_vigil_audit_counts(self):
        seen = W["seen"]["overview"]
        rows = stats("action")
        total = sum(r["count"] for r in rows)
        blocked = sum(r["count"] for r in rows if r["action"] == "block")
        self.assertEqual(int(seen["requests"]), total)
        self.assertEqual(int(seen["blocked"]), blocked)
        self.assertEqual(blocked, 3)
        self.assertEqual(seen["top_blocked_hosts"], [["www.bad.test", "3"]])
        self.assertEqual(int(seen["ca_days"]), 729)
        self.assertEqual(int(seen["ruleset"]), 4)

    def test_who_was_blocked_from_what_and_why_in_one_search(self):
        rows = W["seen"]["blocked_rows"]
        self.assertEqual(len(rows), 3)
        self.assertTrue(all(r["host"] == "www.bad.test" and r["rule"] == "block-malware" for r in rows))
        self.assertIn("malware", W["seen"]["record_reason"])
        self.assertTrue(all("malware" in r["reason"] for r in rows))  # the why, in the list itself
        export = W["seen"]["export_csv"]
        self.assertEqual(len(export.strip().splitlines()), 1 + 3)
        self.assertTrue(export.startswith("id,ts_ms,"))

    def test_attacker_controlled_fields_are_text_and_nothing_runs(self):
        seen = W["seen"]
        self.assertEqual(seen["dialogs"], [])
        self.assertEqual(seen["injected_elements"], 0)
        self.assertEqual(seen["injected_on_rules"], 0)
        self.assertEqual(seen["xss_user_agent"], XSS_UA)
        self.assertTrue(any("<script>alert(4)</script>" in c or "%3Cscript%3E" in c for c in seen["xss_cells"]),
                        seen["xss_cells"])
        self.assertIn("<script>alert(3)</script> bad things", seen["rules_xss_text"])
        self.assertIn(XSS_RULE, seen["policies_text"])

    def test_roles_csrf_and_the_change_made(self):
        seen = W["seen"]
        self.assertEqual(seen["viewer_change"], 403)
        self.assertEqual(seen["no_csrf_change"], 403)
        self.assertIn("block", seen["analyst_verdict"])
        self.assertIn("block-malware", seen["analyst_verdict"])
        self.assertFalse(seen["analyst_has_change_form"])
        self.assertIn("added host newly-blocked.test to malware", seen["admin_message"])
        listed = run([RULES, "--db", W["rules"], "list", "--kind", "host"]).stdout
        self.assertIn("newly-blocked.test", listed)
        self.assertNotIn("viewer.test", listed)
        self.assertNotIn("forged.test", listed)
        history = run([RULES, "--db", W["rules"], "history"]).stdout
        self.assertIn("console:adam", history)
        self.assertIn("not right", seen["wrong_password"])
        events = run([CONSOLE] + console_args() + ["events", "--limit", "100"]).stdout
        for line in ("vera  sign-in: viewer", "adam  rule change: added host newly-blocked.test",
                     "vera  refused: rule change needs the admin role", "adam  sign-in failed"):
            self.assertIn(line, events)

    def test_verify_ca_and_the_certificate_from_the_gateways_ca(self):
        self.assertIn("verified:", W["seen"]["verify"])
        self.assertIn("Console test", W["seen"]["ca_root"])
        # The console's certificate chains to the gateway's root: a client trusting it is happy.
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                            os.path.join(W["ca"], "root.pem"), "https://localhost:%d/login" % W["port"]],
                           capture_output=True, text=True)
        self.assertEqual(p.stdout, "200", p.stderr)
        head = subprocess.run(["curl", "-sSk", "-D", "-", "-o", "/dev/null", "https://localhost:%d/login" % W["port"]],
                              capture_output=True, text=True).stdout
        self.assertRegex(head, r"(?i)set-cookie: vigil_login=\w+; Secure; HttpOnly; SameSite=Strict")
        self.assertRegex(head, r"(?i)content-security-policy: default-src 'none'; script-src 'self'")
        self.assertTrue(os.path.exists(os.path.join(ARTIFACTS, "console-overview.png")))


if __name__ == "__main__":
    unittest.main()
