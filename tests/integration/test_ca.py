"""Enterprise CA deployment with the real vigil-ca and gateway: init options and the encrypted
root key, show/export/kit (files checked with the tools that consume them), the CSR path
through a test "enterprise" PKI, rotation under load, and the onboarding page."""

import json
import os
import plistlib
import signal
import ssl
import subprocess
import threading
import time
import unittest
import urllib.request

from harness import Origin, Pki, Vigil, VIGIL, VIGIL_CA, curl, make_workdir, remove_workdir, run

W = {}


def ca(*args, check=True):
    return subprocess.run([VIGIL_CA] + list(args), capture_output=True, text=True, check=check)


def setUpModule():
    W["dir"] = make_workdir()
    W["pki"] = Pki(W["dir"])
    W["origin"] = Origin("shop", *W["pki"].leaf("shop", "shop.test"))
    W["hosts"] = os.path.join(W["dir"], "hosts")
    with open(W["hosts"], "w") as f:
        f.write("127.0.0.1 *.test\n")


def tearDownModule():
    W["origin"].close()
    remove_workdir(W["dir"])


def path(*p):
    return os.path.join(W["dir"], *p)


def gateway(ca_dir):
    return Vigil(W["dir"], ca_dir, hosts=W["hosts"], extra_ca=W["pki"].ca_pem, extra_args=[
        "--set", "proxy.allow_private_destinations=true",
        "--set", "proxy.allowed_connect_ports=[%d]" % W["origin"].port])


def presented_chain(v, cafile):
    p = subprocess.run(["openssl", "s_client", "-proxy", "127.0.0.1:%d" % v.port, "-connect",
                        "shop.test:%d" % W["origin"].port, "-servername", "shop.test", "-CAfile", cafile,
                        "-showcerts", "-verify_return_error"], input="", capture_output=True, text=True, timeout=20)
    return p.stdout


class InitTest(unittest.TestCase):
    def test_passphrase_from_stdin_environment_and_descriptor(self):
        # The passphrase may come from standard input, an environment variable or an open file
        # descriptor as well as a file ("-" used to fail with "cannot read the passphrase file").
        d = path("enc-sources")
        p = subprocess.run([VIGIL_CA, "init", "--dir", d, "--root-key-passphrase-file", "-"],
                           input="from stdin 123\n", capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        run(["openssl", "pkey", "-in", os.path.join(d, "root.key"), "-passin", "pass:from stdin 123", "-noout"])
        env = dict(os.environ, VIGIL_ROOT_PASS="from stdin 123")
        p = subprocess.run([VIGIL_CA, "rotate", "--dir", d, "--root-key-passphrase-file", "env:VIGIL_ROOT_PASS"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        r, w = os.pipe()
        os.write(w, b"from stdin 123\n")
        os.close(w)
        p = subprocess.run([VIGIL_CA, "rotate", "--dir", d, "--root-key-passphrase-file", "fd:%d" % r],
                           capture_output=True, text=True, pass_fds=(r,))
        os.close(r)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = ca("rotate", "--dir", d, "--root-key-passphrase-file", "env:VIGIL_NO_SUCH_VAR", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("VIGIL_NO_SUCH_VAR is not set", p.stderr)

    def test_encrypted_root_key_and_rotate(self):
        d = path("enc")
        pw = path("pass.txt")
        with open(pw, "w") as f:
            f.write("correct horse battery\n")
        ca("init", "--dir", d, "--org", "Acme", "--cn", "Acme Interception Root", "--key", "ec-p384",
           "--root-days", "1000", "--issuing-days", "100", "--root-key-passphrase-file", pw)
        with open(os.path.join(d, "root.key")) as f:
            self.assertIn("BEGIN ENCRYPTED PRIVATE KEY", f.read())
        run(["openssl", "pkey", "-in", os.path.join(d, "root.key"), "-passin", "file:" + pw, "-noout"])
        info = json.loads(ca("show", "--dir", d, "--json").stdout)
        self.assertEqual(info["root"]["subject"], "CN=Acme Interception Root,O=Acme")
        self.assertEqual(info["root"]["key"], "EC P-384")
        self.assertIn(info["issuing"]["days_left"], (99, 100))  # whole days left, rounded down: 99 once a second has passed
        self.assertTrue(info["chain_verifies"])
        self.assertEqual(len(info["root"]["sha1"].split(":")), 20)
        # rotate needs the passphrase; a wrong one is a clear error and changes nothing
        bad = path("bad.txt")
        with open(bad, "w") as f:
            f.write("wrong wrong wrong\n")
        p = ca("rotate", "--dir", d, "--root-key-passphrase-file", bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("wrong passphrase", p.stderr)
        p = ca("rotate", "--dir", d, check=False)
        self.assertIn("--root-key-passphrase-file", p.stderr)
        ca("rotate", "--dir", d, "--root-key-passphrase-file", pw)
        after = json.loads(ca("show", "--dir", d, "--json").stdout)
        self.assertNotEqual(after["issuing"]["sha256"], info["issuing"]["sha256"])
        self.assertTrue(after["chain_verifies"])
        self.assertEqual(len([f for f in os.listdir(os.path.join(d, "old")) if f.endswith(".pem")]), 1)
        self.assertEqual(os.stat(os.path.join(d, "issuing.key")).st_mode & 0o077, 0)

    def test_no_issuing_ca(self):
        d = path("noiss")
        ca("init", "--dir", d, "--org", "Flat", "--no-issuing")
        self.assertFalse(os.path.exists(os.path.join(d, "issuing.pem")))
        self.assertNotIn("issuing", json.loads(ca("show", "--dir", d, "--json").stdout))
        v = gateway(d)
        try:
            out = presented_chain(v, os.path.join(d, "root.pem"))
            self.assertIn("Verify return code: 0 (ok)", out)
            self.assertIn("i:O = Flat, CN = Flat Root CA", out)
            self.assertNotIn(" 1 s:", out)  # leaf only: the root is on the devices already
        finally:
            v.stop()

    def test_errors_are_one_line(self):
        for args, words in ((["show", "--dir", path("nope")], "not found"),
                            (["init", "--dir", path("x"), "--key", "dsa"], "--key must be"),
                            (["export", "--dir", path("nope"), "--format", "zip", "--out", "x"], "--format")):
            p = ca(*args, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(words, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1)


class ExportAndKitTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = path("kitca")
        ca("init", "--dir", cls.d, "--org", "Kit Corp")
        cls.fp = json.loads(ca("show", "--dir", cls.d, "--json").stdout)["root"]

    def test_export_formats_carry_no_key(self):
        for fmt in ("pem", "der", "p12"):
            out = path("export." + fmt)
            ca("export", "--dir", self.d, "--format", fmt, "--out", out)
            with open(out, "rb") as f:
                self.assertNotIn(b"PRIVATE KEY", f.read())
        run(["openssl", "x509", "-in", path("export.der"), "-inform", "DER", "-noout"])
        keys = subprocess.run(["openssl", "pkcs12", "-in", path("export.p12"), "-passin", "pass:", "-nocerts",
                               "-nodes"], capture_output=True, text=True)
        self.assertEqual(keys.returncode, 0, keys.stderr)
        self.assertNotIn("PRIVATE KEY", keys.stdout)
        certs = run(["openssl", "pkcs12", "-in", path("export.p12"), "-passin", "pass:", "-nokeys"]).stdout
        self.assertIn("CN = Kit Corp Root CA", certs)

    def test_kit_files_parse_and_linux_script_installs(self):
        kit = path("kit")
        ca("kit", "--dir", self.d, "--out", kit)
        with open(os.path.join(kit, "macos", "vigil-root.mobileconfig"), "rb") as f:
            plist = plistlib.load(f)
        payload = plist["PayloadContent"][0]
        self.assertEqual(payload["PayloadType"], "com.apple.security.root")
        with open(os.path.join(kit, "vigil-root.cer"), "rb") as f:
            self.assertEqual(payload["PayloadContent"], f.read())
        # Stable UUIDs: the same root gives the same profile.
        kit2 = path("kit2")
        ca("kit", "--dir", self.d, "--out", kit2)
        with open(os.path.join(kit2, "macos", "vigil-root.mobileconfig"), "rb") as f:
            self.assertEqual(plistlib.load(f)["PayloadUUID"], plist["PayloadUUID"])
        with open(os.path.join(kit, "firefox", "policies.json")) as f:
            pol = json.load(f)["policies"]["Certificates"]
        self.assertTrue(pol["ImportEnterpriseRoots"])
        for der in ("vigil-root.cer", os.path.join("android", "vigil-root.crt")):
            run(["openssl", "x509", "-inform", "DER", "-in", os.path.join(kit, der), "-noout"])
        with open(os.path.join(kit, "README.md")) as f:
            readme = f.read()
        self.assertIn(self.fp["sha256"], readme)
        thumb = self.fp["sha1"].replace(":", "")
        self.assertIn(thumb, readme)
        with open(os.path.join(kit, "windows", "install-root.ps1")) as f:
            self.assertIn(thumb, f.read())
        for var in ("NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "PIP_CERT", "GIT_SSL_CAINFO",
                    "AWS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            self.assertIn(var, readme)
        for root, _, files in os.walk(kit):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(b"PRIVATE KEY", f.read(), name)
        # The Debian script against a temporary root directory.
        tree = path("fakeroot")
        p = subprocess.run(["sh", os.path.join(kit, "linux", "install-debian.sh")], env=dict(os.environ, ROOT=tree),
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        with open(os.path.join(tree, "etc", "ssl", "certs", "ca-certificates.crt")) as f:
            bundle = f.read()
        with open(os.path.join(kit, "vigil-root.pem")) as f:
            self.assertIn(f.read().strip(), bundle)
        self.assertNotEqual(ca("kit", "--dir", self.d, "--out", kit, check=False).returncode, 0)  # no overwrite


class EnterpriseTest(unittest.TestCase):
    def test_csr_signed_by_enterprise_pki_then_gateway_chains_to_it(self):
        d = path("ent")
        csr = path("ent.csr")
        ca("csr", "--dir", d, "--out", csr, "--org", "Ent")
        pki = W["pki"]
        # The company's PKI: its root (the test public CA) signs an intermediate, which signs us.
        inter_key, inter_csr = pki._csr("ent-inter", "Ent Intermediate")
        ext = path("pki", "ca.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        inter = path("pki", "ent-inter.pem")
        run(["openssl", "x509", "-req", "-in", inter_csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key,
             "-CAcreateserial", "-out", inter, "-days", "30", "-extfile", ext])
        signed = path("ent-issuing.pem")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", inter, "-CAkey", inter_key, "-CAcreateserial",
             "-out", signed, "-days", "30", "-extfile", ext])
        chain = path("ent-chain.pem")
        with open(chain, "w") as f:
            f.write(open(inter).read() + open(pki.ca_pem).read())
        # Wrong certificate for the key, and a non-CA certificate: refused.
        p = ca("install-issuing", "--dir", d, "--cert", pki.ca_pem, "--chain", chain, check=False)
        self.assertIn("does not match", p.stderr)
        leaf_pem, _ = pki.leaf("notca", "notca.test")
        p = ca("install-issuing", "--dir", d, "--cert", leaf_pem, check=False)
        self.assertNotEqual(p.returncode, 0)
        ca("install-issuing", "--dir", d, "--cert", signed, "--chain", chain)
        self.assertTrue(json.loads(ca("show", "--dir", d, "--json").stdout)["chain_verifies"])
        v = gateway(d)
        try:
            out = presented_chain(v, pki.ca_pem)  # verified against the enterprise root only
            self.assertIn("Verify return code: 0 (ok)", out)
            self.assertIn(" 1 s:O = Ent, CN = Ent Issuing CA", out)
            self.assertIn(" 2 s:CN = Ent Intermediate", out)
        finally:
            v.stop()


    def test_install_into_an_init_folder_takes_the_enterprise_root(self):
        # A folder made by `vigil-ca init` has a root of its own; installing an enterprise-signed
        # issuing CA used to keep it, so show said "DOES NOT VERIFY", --check-config said OK and
        # kit packaged the wrong root for every machine.
        d = path("ent-init")
        ca("init", "--dir", d, "--org", "Local")
        old_root = open(os.path.join(d, "root.pem")).read()
        csr = path("ent-init.csr")
        ca("csr", "--dir", d, "--out", csr, "--org", "Ent2")
        pki = W["pki"]
        ext = path("pki", "ca2.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        signed = path("ent-init-issuing.pem")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key, "-CAcreateserial",
             "-out", signed, "-days", "30", "-extfile", ext])
        # A chain without its self-signed root is refused: which root would clients trust?
        no_root = path("no-root.pem")
        with open(no_root, "w") as f:
            f.write(open(signed).read())
        p = ca("install-issuing", "--dir", d, "--cert", signed, "--chain", no_root, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("does not end in a self-signed root", p.stderr)
        p = ca("install-issuing", "--dir", d, "--cert", signed, "--chain", pki.ca_pem)
        self.assertIn("moved aside", p.stdout)
        self.assertEqual(open(os.path.join(d, "root.pem")).read(), open(pki.ca_pem).read())
        self.assertTrue(any(n.startswith("root.pem.replaced-") for n in os.listdir(d)))
        self.assertFalse(os.path.exists(os.path.join(d, "root.key")))  # the old root's key went with it
        self.assertNotEqual(open(os.path.join(d, "root.pem")).read(), old_root)
        self.assertEqual(ca("show", "--dir", d).returncode, 0)
        p = subprocess.run([VIGIL, "--check-config", "--ca-dir", d], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        # A folder whose root.pem is not the issuing CA's root is refused everywhere.
        with open(os.path.join(d, "root.pem"), "w") as f:
            f.write(old_root)
        p = ca("show", "--dir", d, check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("DOES NOT VERIFY", p.stdout)
        p = ca("kit", "--dir", d, "--out", path("ent-init-kit"), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("does not verify up to root.pem", p.stderr)
        self.assertFalse(os.path.exists(path("ent-init-kit")))
        p = subprocess.run([VIGIL, "--check-config", "--ca-dir", d], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("does not verify up to", p.stderr)


class RotateTest(unittest.TestCase):
    def test_rotate_under_load_with_sighup(self):
        d = path("rot")
        ca("init", "--dir", d, "--org", "Rot")
        root = os.path.join(d, "root.pem")
        v = gateway(d)
        before = json.loads(ca("show", "--dir", d, "--json").stdout)["issuing"]["sha256"]
        failures, ok = [], [0]
        stop = threading.Event()

        def load():
            ctx = ssl.create_default_context(cafile=root)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": v.proxy}),
                                                 urllib.request.HTTPSHandler(context=ctx))
            while not stop.is_set():
                try:
                    with opener.open("https://shop.test:%d/hello" % W["origin"].port, timeout=10) as r:
                        r.read()
                        ok[0] += 1
                except Exception as e:
                    failures.append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        ca("rotate", "--dir", d)
        v.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        after = json.loads(ca("show", "--dir", d, "--json").stdout)["issuing"]
        out = presented_chain(v, root)
        rc, counters = v.stop()
        self.assertEqual(failures, [])
        self.assertGreater(ok[0], 5)
        self.assertNotEqual(after["sha256"], before)
        self.assertIn("Verify return code: 0 (ok)", out)
        # The chain now carries the new issuing CA (its PEM is in issuing.pem).
        with open(os.path.join(d, "issuing.pem")) as f:
            new_pem = "".join(l for l in f.read().split("-----")[2].split())
        self.assertIn(new_pem, "".join(out.split()))
        self.assertEqual(rc, 0)


class OnboardingTest(unittest.TestCase):
    def test_onboarding_page_and_downloads_never_a_key(self):
        d = path("onb")
        ca("init", "--dir", d, "--org", "Onboard")
        fp = json.loads(ca("show", "--dir", d, "--json").stdout)["root"]["sha256"]
        v = Vigil(W["dir"], d)  # defaults: no private destinations, nothing else configured
        try:
            code, status, headers, body, err = curl("-x", v.proxy, "http://vigil.invalid/")
            self.assertEqual(status, 200, err)
            self.assertIn(('id="sha256">%s<' % fp).encode(), body)
            code, status, headers, pem, err = curl("-x", v.proxy, "http://vigil.invalid/vigil-root.pem")
            with open(os.path.join(d, "root.pem"), "rb") as f:
                self.assertEqual(pem, f.read())
            code, status, headers, der, err = curl("-x", v.proxy, "http://vigil.invalid/vigil-root.cer")
            self.assertIn("application/pkix-cert", headers)
            p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"], input=der,
                               capture_output=True)
            self.assertIn(b"Onboard Root CA", p.stdout)
            code, status, headers, prof, err = curl("-x", v.proxy, "http://vigil.invalid/vigil-root.mobileconfig")
            self.assertEqual(plistlib.loads(prof)["PayloadType"], "Configuration")
            for bad in ("/root.key", "/issuing.key", "/../issuing.key", "/vigil-root.pem/../issuing.key"):
                code, status, headers, body, err = curl("-x", v.proxy, "--path-as-is", "http://vigil.invalid" + bad)
                self.assertEqual(status, 404, bad)
                self.assertNotIn(b"PRIVATE", body)
        finally:
            v.stop()


if __name__ == "__main__":
    unittest.main()
