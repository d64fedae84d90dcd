"""Test harness for Vigil's integration tests: a test PKI made with the openssl CLI, local
origin servers (TLS and plain; in origin.py), and the real vigil binary started on a free port."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from origin import BLOCK, EICAR, Origin, OriginHandler, brotli_compress, brotli_decompress, text_body  # noqa: F401  (re-exported)

BIN_DIR = os.environ.get("VIGIL_BIN_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
VIGIL = os.path.join(BIN_DIR, "vigil")
VIGIL_CA = os.path.join(BIN_DIR, "vigil-ca")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Pki:
    """A 'public' test CA (trusted by vigil via --extra-ca) and origin certificates, good and bad."""

    def __init__(self, root):
        self.dir = os.path.join(root, "pki")
        os.makedirs(self.dir)
        self.ca_pem, self.ca_key = self._self_signed_ca("publicca", "Test Public Root")
        self.other_ca_pem, self.other_ca_key = self._self_signed_ca("otherca", "Untrusted Root")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _self_signed_ca(self, name, cn):
        key, pem = self.path(name + ".key"), self.path(name + ".pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", pem, "-days", "30", "-subj", "/O=Vigil tests/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        return pem, key

    def _csr(self, name, cn):
        key, csr = self.path(name + ".key"), self.path(name + ".csr")
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + cn])
        return key, csr

    def _ext(self, name, san):
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=" + san + "\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        return ext

    def leaf(self, name, san_host, ca=None, days=10):
        """A leaf for san_host signed by the public CA (or `ca` = (pem, key))."""
        ca_pem, ca_key = ca or (self.ca_pem, self.ca_key)
        key, csr = self._csr(name, san_host)
        pem = self.path(name + ".pem")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
             "-out", pem, "-days", str(days), "-extfile", self._ext(name, "DNS:" + san_host)])
        return pem, key

    def expired_leaf(self, name, san_host):
        """A leaf whose validity ended in the past (openssl ca takes explicit dates)."""
        key, csr = self._csr(name, san_host)
        pem = self.path(name + ".pem")
        cadir = self.path("cadb")
        os.makedirs(os.path.join(cadir, "new"), exist_ok=True)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        cnf = self.path("ca.cnf")
        with open(cnf, "w") as f:
            f.write(f"[ca]\ndefault_ca=d\n[d]\ndatabase={cadir}/index.txt\nnew_certs_dir={cadir}/new\n"
                    f"serial={cadir}/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n"
                    "[p]\ncommonName=supplied\n")
        run(["openssl", "ca", "-batch", "-config", cnf, "-cert", self.ca_pem, "-keyfile", self.ca_key,
             "-in", csr, "-out", pem, "-notext", "-startdate", "20200101000000Z", "-enddate", "20210101000000Z",
             "-extfile", self._ext(name, "DNS:" + san_host)])
        return pem, key

    def self_signed_leaf(self, name, san_host):
        key, pem = self.path(name + ".key"), self.path(name + ".pem")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", pem, "-days", "10", "-subj", "/CN=" + san_host,
             "-addext", "subjectAltName=DNS:" + san_host, "-addext", "extendedKeyUsage=serverAuth"])
        return pem, key


class ParentProxy:
    """A small forward proxy on 127.0.0.1 to stand for a site's parent proxy: CONNECT tunnels
    and absolute-form requests (answered with Connection: close), every name reached at
    127.0.0.1; counts what it served. kill() makes it vanish: listener and connections closed."""

    def __init__(self, label, refuse_connect=False):
        self.label = label
        self.refuse_connect = refuse_connect  # answers every CONNECT with 403
        self.counts = {"connect": 0, "http": 0}
        self.targets = []
        self.lock = threading.Lock()
        self.conns = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_head(s):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        return head.decode("latin-1"), rest

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, c):
        try:
            head, rest = self._read_head(c)
            if head is None:
                return
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            with self.lock:
                self.targets.append(method + " " + target)
            if method == "CONNECT" and self.refuse_connect:
                c.sendall(b"HTTP/1.1 403 Forbidden by policy\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                up = socket.create_connection(("127.0.0.1", port))
                with self.lock:
                    self.counts["connect"] += 1
                    self.conns.add(up)
                c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    up.sendall(rest)
                threading.Thread(target=self._pipe, args=(up, c), daemon=True).start()
                self._pipe(c, up)
                return
            if not target.startswith("http://"):
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            authority, path = (target[7:].split("/", 1) + [""])[:2]
            port = int(authority.rsplit(":", 1)[1]) if ":" in authority else 80
            up = socket.create_connection(("127.0.0.1", port))
            with self.lock:
                self.counts["http"] += 1
                self.conns.add(up)
            fields = [l for l in lines[1:] if not l.lower().startswith(("connection:", "proxy-connection:"))]
            up.sendall(("%s /%s HTTP/1.1\r\n%s\r\nConnection: close\r\n\r\n" %
                        (method, path, "\r\n".join(fields))).encode("latin-1") + rest)
            threading.Thread(target=self._pipe, args=(c, up), daemon=True).start()  # the rest of a body
            rhead, rrest = self._read_head(up)
            if rhead is None:
                return
            rlines = [l for l in rhead.split("\r\n") if not l.lower().startswith("connection:")]
            c.sendall(("\r\n".join(rlines) + "\r\nConnection: close\r\n\r\n").encode("latin-1") + rrest)
            self._pipe(up, c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def kill(self):
        self.sock.close()
        with self.lock:
            for x in list(self.conns):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                    x.close()
                except OSError:
                    pass


class Recorder:
    """A TCP server that records every byte it receives and never answers: proves what reached it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        conn.settimeout(5)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.received += data
        except OSError:
            pass
        conn.close()

    def close(self):
        self.sock.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Vigil:
    """The real gateway binary, on a free port, with its own CA directory."""

    instances = 0

    def __init__(self, workdir, ca_dir, extra_args=(), hosts=None, extra_ca=None, expect_start=True, wrapper=()):
        self.workdir = workdir
        Vigil.instances += 1
        n = Vigil.instances
        self.ready = os.path.join(workdir, "ready-%d.json" % n)
        self.stats_file = os.path.join(workdir, "stats-%d.json" % n)
        self.log_path = os.path.join(workdir, "vigil-%d.log" % n)
        args = [VIGIL, "--listen", "127.0.0.1:0", "--ca-dir", ca_dir, "--threads", "2",
                "--ready-file", self.ready, "--stats-file", self.stats_file, "--set", 'admin.listen="127.0.0.1:0"']
        if hosts:
            args += ["--hosts-file", hosts]
        if extra_ca:
            args += ["--extra-ca", extra_ca]
        args += list(extra_args)
        self.log = open(self.log_path, "w")
        # `wrapper`: a command that runs vigil, e.g. prlimit with its limits.
        self.proc = subprocess.Popen(list(wrapper) + args, stdout=self.log, stderr=subprocess.STDOUT)
        if not expect_start:
            return
        deadline = time.time() + 15
        while not os.path.exists(self.ready):
            if self.proc.poll() is not None:
                raise RuntimeError("vigil exited at start: " + self.read_log())
            if time.time() > deadline:
                raise RuntimeError("vigil did not start: " + self.read_log())
            time.sleep(0.02)
        with open(self.ready) as f:
            info = json.load(f)
        self.port = int(info["listen"].rsplit(":", 1)[1])
        self.admin_port = int(info.get("admin_port", 0))
        self.proxy = "http://127.0.0.1:%d" % self.port

    def metric(self, name):
        """The value of vigil_<name>_total on the admin endpoint's /metrics."""
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin_port, timeout=10) as r:
            text = r.read().decode()
        found = re.search(r"^vigil_%s_total (\S+)$" % name, text, re.M)
        if not found:
            raise AssertionError("no vigil_%s_total on /metrics" % name)
        return int(float(found.group(1)))

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals vigil and returns (exit code, counters)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        counters = {}
        if os.path.exists(self.stats_file):
            with open(self.stats_file) as f:
                counters = json.load(f)
        return code, counters


def curl(*args, timeout=60):
    """Runs curl; returns (exit code, status, headers, body bytes). HTTP/1.1 unless the test asks
    for --http2 (test_http2.py): the bump offers h2, and these tests check HTTP/1.1."""
    with tempfile.TemporaryDirectory() as d:
        body, head = os.path.join(d, "body"), os.path.join(d, "head")
        version = [] if "--http2" in args else ["--http1.1"]
        p = subprocess.run(["curl", "-sS", "-o", body, "-D", head, "-w", "%{http_code}", "--max-time",
                            str(timeout)] + version + list(args), capture_output=True, text=True)
        data, headers = b"", ""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        if os.path.exists(head):
            with open(head) as f:
                headers = f.read()
        return p.returncode, int(p.stdout or 0), headers, data, p.stderr


def read_all(sock, timeout=5):
    """Everything the peer sends until it closes, resets or goes quiet for `timeout` seconds."""
    sock.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError, OSError):
        pass
    return out


def raw_exchange(port, data, read_timeout=5):
    """Sends raw bytes to the proxy and returns everything it answers before closing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    s.sendall(data)
    out = read_all(s, read_timeout)
    s.close()
    return out


def connect_tunnel(port, target, timeout=10):
    """Opens a CONNECT tunnel through the proxy; returns the socket after '200'."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    return s, resp


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def make_workdir():
    d = tempfile.mkdtemp(prefix="vigil-it-")
    return d


def remove_workdir(d):
    if os.environ.get("VIGIL_KEEP_WORKDIR"):
        print("kept test directory", d)
        return
    shutil.rmtree(d, ignore_errors=True)
