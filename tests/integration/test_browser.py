"""Real-browser proof: headless Chromium, trusting Vigil's root through an NSS database,
loads an inspected HTTPS page through the gateway without a warning, and sees Vigil's
pages as an employee would: blocked, warned, an origin's expired certificate, a certificate
for another host, the onboarding page. Screenshots are kept as test artefacts
(build/test-artifacts/browser-*.png, VIGIL_ARTIFACTS to move them)."""

import os
import shutil
import subprocess
import unittest

from harness import BIN_DIR, Origin, Pki, Vigil, VIGIL_CA, make_workdir, remove_workdir, run

RULES = os.path.join(BIN_DIR, "vigil-rules")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = os.environ.get("VIGIL_ARTIFACTS", os.path.join(BIN_DIR, "..", "test-artifacts"))
W = {}


def setUpModule():
    if not CHROMIUM or not shutil.which("certutil"):
        raise unittest.SkipTest("chromium and certutil (libnss3-tools) are installed by `make deps`")
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Browser Test"])
    pki = Pki(d)
    W["shop"] = Origin("shop", *pki.leaf("shop", "shop.test"))
    W["bad"] = Origin("bad", *pki.leaf("bad", "www.bad.test"))
    W["news"] = Origin("news", *pki.leaf("news", "www.news.test"))
    W["expired"] = Origin("expired", *pki.expired_leaf("expired", "expired.test"))
    W["wronghost"] = Origin("wronghost", *pki.leaf("wronghost", "someone-else.test"))
    rules = os.path.join(d, "rules.db")
    run([RULES, "--db", rules, "init"])
    run([RULES, "--db", rules, "add", "category", "malware"])
    run([RULES, "--db", rules, "add", "host", ".bad.test", "--category", "malware"])
    run([RULES, "--db", rules, "add", "policy", "block-malware", "--action", "block", "--category", "malware"])
    run([RULES, "--db", rules, "add", "category", "news"])
    run([RULES, "--db", rules, "add", "host", ".news.test", "--category", "news"])
    run([RULES, "--db", rules, "add", "policy", "warn-news", "--action", "warn", "--category", "news"])
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 *.test\n")
    W["vigil"] = Vigil(d, W["ca"], hosts=hosts, extra_ca=pki.ca_pem, extra_args=[
        "--rules", rules, "--set", "proxy.allow_private_destinations=true",
        "--set", "pages.organisation=\"Acme IT\"",
        "--set", "proxy.allowed_connect_ports=[%s]" % ",".join(
            str(W[k].port) for k in ("shop", "bad", "news", "expired", "wronghost"))])
    # A fresh profile whose NSS database trusts Vigil's root (as an enterprise would deploy it).
    W["home"] = os.path.join(d, "home")
    nssdb = os.path.join(W["home"], ".pki", "nssdb")
    os.makedirs(nssdb)
    run(["certutil", "-N", "-d", "sql:" + nssdb, "--empty-password"])
    run(["certutil", "-A", "-d", "sql:" + nssdb, "-t", "C,,", "-n", "Vigil test root", "-i",
         os.path.join(W["ca"], "root.pem")])
    os.makedirs(ARTIFACTS, exist_ok=True)


def tearDownModule():
    if "vigil" in W:
        W["vigil"].stop()
        for k in ("shop", "bad", "news", "expired", "wronghost"):
            W[k].close()
    if "dir" in W:
        remove_workdir(W["dir"])


def chromium(url, *extra):
    profile = os.path.join(W["dir"], "profile-%d" % len(os.listdir(W["dir"])))
    args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--user-data-dir=" + profile,
            "--proxy-server=" + W["vigil"].proxy] + list(extra) + [url]
    env = dict(os.environ, HOME=W["home"])
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


class BrowserTest(unittest.TestCase):
    def test_inspected_page_loads_without_warning(self):
        url = "https://shop.test:%d/hello" % W["shop"].port
        p = chromium(url, "--dump-dom")
        self.assertIn("hello from shop", p.stdout, p.stderr[-2000:])
        self.assertNotIn("ERR_CERT", p.stdout + p.stderr)
        shot = os.path.join(ARTIFACTS, "browser-inspected.png")
        chromium(url, "--screenshot=" + shot, "--window-size=800,600")
        self.assertTrue(os.path.getsize(shot) > 1000)

    def test_blocked_site_shows_vigils_block_page(self):
        url = "https://www.bad.test:%d/" % W["bad"].port
        p = chromium(url, "--dump-dom")
        self.assertIn("This page is blocked", p.stdout, p.stderr[-2000:])
        self.assertIn('id="rule">block-malware<', p.stdout)
        chromium(url, "--screenshot=" + os.path.join(ARTIFACTS, "browser-blocked.png"), "--window-size=900,900")
        self.assertEqual(W["bad"].stats["connections"], 0)

    def test_pages_as_people_see_them(self):
        # Each page: what Chromium's DOM holds, and a screenshot kept for people to look at.
        pages = (
            ("warn", "https://www.news.test:%d/" % W["news"].port,
             ("Continue to the site", 'id="rule">warn-news<', "Acme IT")),
            ("expired", "https://expired.test:%d/" % W["expired"].port,
             ("certificate has expired", "At fault", "the site: its certificate")),
            ("wrong-host", "https://wronghost.test:%d/" % W["wronghost"].port,
             ("someone-else.test", "At fault", "wronghost.test")),
            ("onboarding", "http://vigil.invalid/", ("Trust ", "SHA-256", "root")),
        )
        for name, url, words in pages:
            with self.subTest(page=name):
                p = chromium(url, "--dump-dom")
                for w in words:
                    self.assertIn(w, p.stdout, p.stderr[-2000:])
                self.assertIn("Reference" if name != "onboarding" else "Vigil", p.stdout)
                shot = os.path.join(ARTIFACTS, "browser-%s.png" % name)
                if os.path.exists(shot):
                    os.remove(shot)
                chromium(url, "--screenshot=" + shot, "--window-size=900,900")
                with open(shot, "rb") as f:
                    png = f.read()
                self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
                self.assertGreater(len(png), 5000)  # a page with text on it, not a blank frame
        # Neither bad certificate reached the browser: the origins saw a handshake, no request.
        self.assertEqual(W["expired"].stats.get("requests", 0), 0)
        self.assertEqual(W["wronghost"].stats.get("requests", 0), 0)

    def test_presented_certificate_profile(self):
        p = subprocess.run(["openssl", "s_client", "-proxy", "127.0.0.1:%d" % W["vigil"].port, "-connect",
                            "shop.test:%d" % W["shop"].port, "-servername", "shop.test", "-showcerts",
                            "-CAfile", os.path.join(W["ca"], "root.pem"), "-verify_return_error", "-tls1_2"],
                           input="", capture_output=True, text=True, timeout=20)
        self.assertIn("Verify return code: 0 (ok)", p.stdout)
        self.assertIn("Protocol  : TLSv1.2", p.stdout)
        leaf = p.stdout.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        text = run(["openssl", "x509", "-noout", "-text"],
                   input="-----BEGIN CERTIFICATE-----" + leaf + "-----END CERTIFICATE-----\n").stdout
        self.assertIn("DNS:shop.test", text)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertIn("CA:FALSE", text)
        self.assertNotIn("sha1With", text)
        for old in ("-tls1", "-tls1_1"):
            q = subprocess.run(["openssl", "s_client", "-proxy", "127.0.0.1:%d" % W["vigil"].port, "-connect",
                                "shop.test:%d" % W["shop"].port, "-servername", "shop.test", old,
                                "-cipher", "DEFAULT@SECLEVEL=0"], input="", capture_output=True, text=True,
                               timeout=20)
            self.assertIn("no peer certificate available", q.stdout)  # TLS 1.0/1.1 are refused
            self.assertNotEqual(q.returncode, 0)


if __name__ == "__main__":
    unittest.main()
