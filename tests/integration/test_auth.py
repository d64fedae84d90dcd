"""Proxy authentication and per-user policy through the real gateway: users and groups kept
by vigil-rules, Basic auth (407), different verdicts for alice (finance) and bob (staff) in
plain HTTP and inside the bump, the audit log recording who, throttling, exemptions."""

import json
import os
import subprocess
import time
import unittest

from harness import BIN_DIR, Origin, Pki, Vigil, VIGIL_CA, curl, make_workdir, remove_workdir, run

RULES = os.path.join(BIN_DIR, "vigil-rules")
AUDIT = os.path.join(BIN_DIR, "vigil-audit")
W = {}


def vr(*args, check=True, stdin=None):
    return subprocess.run([RULES, "--db", W["db"], "--actor", "tests"] + list(args), capture_output=True, text=True,
                          check=check, input=stdin)


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"]])
    pki = Pki(d)
    W["plain"] = Origin("plain")
    W["tls"] = Origin("social", *pki.leaf("social", "www.social.test"))
    W["db"] = os.path.join(d, "rules.db")
    vr("init")
    for g in ("finance", "staff"):
        vr("group", "add", g)
    vr("user", "add", "alice", "--password-file", "-", "--group", "finance", stdin="alice-secret-1\n")
    vr("user", "add", "bob", "--password-file", "-", "--group", "staff", stdin="bob-secret-22\n")
    vr("add", "category", "social")
    vr("add", "host", ".social.test", "--category", "social")
    vr("add", "policy", "staff-no-social", "--action", "block", "--group", "staff", "--category", "social",
       "--priority", "5")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["audit"] = os.path.join(d, "audit.db")
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--rules", W["db"], "--audit", W["audit"], "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d]" % W["tls"].port, "--set", "auth.required=true",
        "--set", 'proxy.allow_clients=["127.0.0.0/8"]', "--set", 'auth.exempt_clients=["127.0.0.4/32"]'])


def tearDownModule():
    if W["vigil"].proc.poll() is None:
        W["vigil"].stop()
    W["plain"].close()
    W["tls"].close()
    remove_workdir(W["dir"])


def social_plain():
    return "http://www.social.test:%d/hello" % W["plain"].port


def social_tls():
    return "https://www.social.test:%d/hello" % W["tls"].port


class AuthTest(unittest.TestCase):
    def test_no_or_wrong_credentials_get_407(self):
        code, status, headers, body, err = curl("-x", W["vigil"].proxy, social_plain())
        self.assertEqual(status, 407)
        self.assertIn('Proxy-Authenticate: Basic realm="Vigil"', headers)
        code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--proxy-user", "alice:wrong-password",
                                                social_plain())
        self.assertEqual(status, 407)
        code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--proxy-user", "mallory:whatever1",
                                                social_plain())
        self.assertEqual(status, 407)

    def test_alice_and_bob_get_different_verdicts_and_the_audit_log_says_who(self):
        root = os.path.join(W["ca"], "root.pem")
        for url, extra in ((social_plain(), []), (social_tls(), ["--cacert", root])):
            with self.subTest(url=url):
                code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--proxy-user", "alice:alice-secret-1",
                                                        *extra, url)
                self.assertEqual(status, 200, err)
                code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--proxy-user", "bob:bob-secret-22",
                                                        *extra, url)
                self.assertEqual(status, 403)
                self.assertIn(b'id="rule">staff-no-social<', body)
        time.sleep(1.0)  # the audit writer commits within a few hundred milliseconds
        rows = json.loads(subprocess.run([AUDIT, "--db", W["audit"], "query", "--format", "json", "--host",
                                          "www.social.test", "--kind", "transaction"],
                                         capture_output=True, text=True, check=True).stdout)
        who = sorted((r["user"], r["group"], r["action"], r["scheme"]) for r in rows if r["user"])
        self.assertIn(("alice", "finance", "allow", "http"), who)
        self.assertIn(("alice", "finance", "allow", "https"), who)
        self.assertIn(("bob", "staff", "block", "http"), who)
        self.assertIn(("bob", "staff", "block", "https"), who)
        # vigil-rules test resolves the user's groups from the database, like the gateway.
        v = json.loads(vr("test", "--url", social_plain(), "--user", "bob", "--json").stdout)
        self.assertEqual((v["action"], v["rule"]), ("block", "staff-no-social"))

    def test_throttling_and_exemptions(self):
        for _ in range(5):
            code, status, headers, body, err = curl("--interface", "127.0.0.3", "-x", W["vigil"].proxy,
                                                    "--proxy-user", "alice:bad-password", social_plain())
            self.assertEqual(status, 407)
        code, status, headers, body, err = curl("--interface", "127.0.0.3", "-x", W["vigil"].proxy,
                                                "--proxy-user", "alice:alice-secret-1", social_plain())
        self.assertEqual(status, 429)
        self.assertIn("X-Vigil-Reason: auth_throttled", headers)
        # Another address is not affected; an exempt one needs no credentials.
        code, status, headers, body, err = curl("-x", W["vigil"].proxy, "--proxy-user", "alice:alice-secret-1",
                                                social_plain())
        self.assertEqual(status, 200)
        code, status, headers, body, err = curl("--interface", "127.0.0.4", "-x", W["vigil"].proxy, social_plain())
        self.assertEqual(status, 200)


class UserToolTest(unittest.TestCase):
    def test_user_commands_and_history_never_holds_a_hash(self):
        vr("user", "add", "carol", "--password-file", "-", "--group", "staff", stdin="carol-pass-333\n")
        self.assertIn("carol  groups=staff", vr("user", "list").stdout)
        vr("user", "groups", "carol", "--group", "finance", "--group", "staff")
        self.assertIn("carol  groups=finance,staff", vr("user", "list").stdout)
        vr("user", "passwd", "carol", "--password-file", "-", stdin="carol-pass-444\n")
        self.assertIn("carol  groups=finance,staff", vr("user", "list").stdout)
        p = vr("user", "add", "dave", "--password-file", "-", stdin="short\n", check=False)
        self.assertIn("at least 8 characters", p.stderr)
        p = vr("user", "add", "erin", "--password-file", "-", "--group", "nope", stdin="long-enough-1\n", check=False)
        self.assertIn('unknown group "nope"', p.stderr)
        p = vr("group", "remove", "staff", check=False)
        self.assertIn("used by policy", p.stderr)
        vr("user", "remove", "carol")
        self.assertNotIn("carol", vr("user", "list").stdout)
        self.assertNotIn("pbkdf2", vr("history", "--limit", "100").stdout)
        self.assertNotIn("pbkdf2", vr("export").stdout)


if __name__ == "__main__":
    unittest.main()
