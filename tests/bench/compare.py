#!/usr/bin/env python3
"""Vigil side by side with Squid (SslBump) and mitmproxy, and with the origin direct: the same
scenarios, the same load generator (vigil_loadgen), one run, one table. Not a test; run by
`make bench-compare` (it installs nginx, squid-openssl and mitmproxy if they are missing).

    tests/bench/compare.py [--bin build/bin] [--seconds 10] [--targets direct,vigil,squid,mitmproxy]
                           [--scenarios keepalive,newconn,bulk1m,bulk16m,plain,first,idle,h2] [--idle 10000] [--pin]

Every server listens on 127.0.0.1 only and is started and stopped here, by PID. The origin is
nginx with an RSA-2048 certificate (TLS and plain ports; files of 1 KiB, 64 KiB, 1 MiB, 16 MiB).
Vigil runs with the default ruleset plus 1,000 response-body signatures and the audit log on;
Squid with `ssl_bump bump all`, caching off, access log on; mitmproxy as mitmdump."""

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited at start (status %s)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not start listening on %d" % (what, port))


def family(pid):
    """A process and its children (Squid's kid and helpers, nginx's worker)."""
    pids = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def cpu_seconds(pid):
    """User + system CPU time of a process and its children, all threads, in seconds."""
    total = 0
    for p in family(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        except (OSError, ValueError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    """Resident memory of a process and its children (Squid's helpers, nginx workers), KiB."""
    total = 0
    for p in family(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.w = tempfile.mkdtemp(prefix="vigil-compare-")
        os.chmod(self.w, 0o755)  # Squid drops to user proxy and must read its files here
        self.procs = {}
        self.specs = {}   # name -> how it was started, for restart()
        self.cafile = {}  # target -> CA the client trusts
        self.proxy = {}   # target -> "127.0.0.1:PORT" ("" for direct)

    def path(self, *p):
        return os.path.join(self.w, *p)

    # --- set-up -----------------------------------------------------------------------
    def pki(self):
        ca_key, ca = self.path("origin-ca.key"), self.path("origin-ca.pem")
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=Bench Origin CA",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        key, csr, pem, ext = (self.path("origin" + x) for x in (".key", ".csr", ".pem", ".ext"))
        sh("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=bench.test")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:bench.test,DNS:*.bench.test,IP:127.0.0.1\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        sh("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", pem,
           "-days", "2", "-extfile", ext)
        self.origin_ca = ca
        os.makedirs(self.path("www"))
        for name, size in (("1k", 1024), ("64k", 65536), ("1m", 1 << 20), ("16m", 16 << 20)):
            with open(self.path("www", name), "wb") as f:
                f.write(os.urandom(size))

    def pinned(self, name):
        """With --pin: the origin and the load generator on the first CPU, each proxy on the
        others, so a proxy's figures are its own cores' work, not a share of the endpoints'."""
        if not self.args.pin:
            return {}
        cpus = sorted(os.sched_getaffinity(0))
        mine = {cpus[0]} if name in ("nginx", "loadgen") else set(cpus[1:])
        return {"preexec_fn": lambda: os.sched_setaffinity(0, mine)}

    def start(self, name, cmd, port, **kw):
        self.specs[name] = (cmd, port, kw)
        log = open(self.path(name + ".log"), "a")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kw, **self.pinned(name))
        self.procs[name] = proc
        wait_port(port, proc, name)
        return proc

    def nginx(self):
        self.tls_port, self.plain_port = free_port(), free_port()
        conf = self.path("nginx.conf")
        with open(conf, "w") as f:
            f.write("""user root;
worker_processes 1;
daemon off;
pid %(w)s/nginx.pid;
error_log %(w)s/nginx-error.log;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    server {
        listen 127.0.0.1:%(tls)d ssl http2;
        listen 127.0.0.1:%(plain)d;
        ssl_certificate %(w)s/origin.pem;
        ssl_certificate_key %(w)s/origin.key;
        root %(w)s/www;
    }
}
""" % {"w": self.w, "tls": self.tls_port, "plain": self.plain_port})
        self.start("nginx", ["nginx", "-c", conf, "-p", self.w], self.tls_port)
        self.proxy["direct"], self.cafile["direct"] = "", self.origin_ca

    def vigil(self):
        ca_dir, db = self.path("vigil-ca"), self.path("rules.db")
        sh(os.path.join(self.bin, "vigil-ca"), "init", "--dir", ca_dir)
        rules = os.path.join(self.bin, "vigil-rules")
        sh(rules, "--db", db, "init")
        sh(rules, "--db", db, "import", os.path.join(ROOT, "rules", "default", "default.json"))
        sh(rules, "--db", db, "import", self.signatures())
        with open(self.path("hosts"), "w") as f:
            f.write("127.0.0.1 bench.test\n127.0.0.1 *.bench.test\n")
        port = free_port()
        ports = "[%d,%d]" % (self.tls_port, self.plain_port)
        self.start("vigil", [os.path.join(self.bin, "vigil"), "--listen", "127.0.0.1:%d" % port,
                             "--ca-dir", ca_dir, "--rules", db, "--audit", self.path("audit.db"),
                             "--hosts-file", self.path("hosts"), "--extra-ca", self.origin_ca, "--log-level", "warn",
                             "--set", "proxy.allow_private_destinations=true",
                             "--set", "proxy.allowed_connect_ports=" + ports,
                             "--set", "proxy.allowed_http_ports=" + ports,
                             # Squid runs with caching off (cache deny all): so does Vigil, so
                             # both are measured proxying, not answering from a cache.
                             "--set", "cache.enabled=%s" % ("true" if self.args.vigil_cache else "false"),
                             "--set", "limits.max_connections=50000",
                             "--set", "limits.max_connections_per_client=50000"] +
                   [a for kv in self.args.vigil_set for a in ("--set", kv)], port)
        self.proxy["vigil"], self.cafile["vigil"] = "127.0.0.1:%d" % port, os.path.join(ca_dir, "root.pem")

    def signatures(self):
        """1,000 response-body signatures shaped like real ones (a literal core, variable parts)."""
        rng = random.Random(7)
        sigs = []
        for i in range(1000):
            core = "".join(rng.choice(string.ascii_lowercase) for _ in range(8))
            pattern = [core + "[0-9]{2,6}", "(?i)" + core + "\\s*=\\s*['\"]", core + ".{0,20}" + str(i),
                       "\\b" + core + "\\b"][i % 4]
            sigs.append({"name": "bench-%d" % i, "target": "response_body", "pattern": pattern, "action": "block",
                         "severity": "high", "validator": "", "enabled": True, "description": "benchmark"})
        path = self.path("signatures.json")
        with open(path, "w") as f:
            json.dump({"format": "vigil-rules/1", "meta": {"source": "compare.py"}, "signatures": sigs}, f)
        return path

    def squid(self):
        key, pem = self.path("squid-ca.key"), self.path("squid-ca.pem")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem, "-days", "2",
           "-subj", "/CN=Squid Bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign")
        db = self.path("squid-ssl-db")
        sh("/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "16MB")
        os.makedirs(self.path("squid-logs"))
        for p in (db, self.path("squid-logs"), key, pem):
            sh("chown", "-R", "proxy:proxy", p)
        with open(self.path("squid-hosts"), "w") as f:
            f.write("127.0.0.1 bench.test\n")
        port = free_port()
        conf = self.path("squid.conf")
        with open(conf, "w") as f:
            f.write("""http_port 127.0.0.1:%(port)d ssl-bump tls-cert=%(pem)s tls-key=%(key)s generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program /usr/lib/squid/security_file_certgen -s %(db)s -M 16MB
sslcrtd_children 8 startup=2 idle=1
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
tls_outgoing_options cafile=%(ca)s
hosts_file %(w)s/squid-hosts
http_access allow all
cache deny all
cache_mem 0
pid_filename %(w)s/squid-logs/squid.pid
cache_log %(w)s/squid-logs/cache.log
access_log stdio:%(w)s/squid-logs/access.log
coredump_dir %(w)s/squid-logs
max_filedescriptors 65536
shutdown_lifetime 1 seconds
""" % {"port": port, "pem": pem, "key": key, "db": db, "ca": self.origin_ca, "w": self.w})
        self.start("squid", ["/usr/sbin/squid", "-f", conf, "-N"], port)
        self.proxy["squid"], self.cafile["squid"] = "127.0.0.1:%d" % port, pem

    def mitmproxy(self):
        confdir = self.path("mitm")
        os.makedirs(confdir)
        key, pem = self.path("mitm-ca.key"), self.path("mitm-ca.pem")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem, "-days", "2",
           "-subj", "/CN=mitmproxy Bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign")
        with open(os.path.join(confdir, "mitmproxy-ca.pem"), "w") as out:
            for p in (key, pem):
                with open(p) as src:
                    out.write(src.read())
        port = free_port()
        self.start("mitmproxy", ["mitmdump", "--listen-host", "127.0.0.1", "-p", str(port), "--set", "confdir=" + confdir,
                                 "--set", "ssl_verify_upstream_trusted_ca=" + self.origin_ca, "-q"], port)
        self.proxy["mitmproxy"], self.cafile["mitmproxy"] = "127.0.0.1:%d" % port, pem

    def stop(self, name):
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT if name == "squid" else signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def restart(self, name):
        """The same process started afresh: a measure of resident memory must not count on (or be
        hidden by) heap that earlier scenarios grew and freed."""
        self.stop(name)
        cmd, port, kw = self.specs[name]
        self.start(name, cmd, port, **kw)

    def stop_all(self):
        for name in reversed(list(self.procs)):
            self.stop(name)
        shutil.rmtree(self.w, ignore_errors=True)

    # --- measuring --------------------------------------------------------------------
    def load(self, target, url, mode="keepalive", connections=32, distinct=0, seconds=None, rate=0):
        if target == "mitmproxy":
            url = url.replace("bench.test", "127.0.0.1")  # it resolves names itself, with no hosts file
        cmd = [os.path.join(self.bin, "vigil_loadgen"), "--url", url, "--mode", mode,
               "--connections", str(connections), "--seconds", str(seconds or self.args.seconds),
               "--threads", "1", "--cafile", self.cafile[target]]
        if self.proxy[target]:
            cmd += ["--proxy", self.proxy[target]]
        elif "bench.test" in url:
            cmd += ["--origin-addr", "127.0.0.1"]
        if distinct:
            cmd += ["--distinct-hosts", str(distinct)]
        if rate:
            cmd += ["--rate", str(rate)]
        # CPU spent per request by the proxy, the origin and the load generator: the three
        # share the machine's cores, so a proxy's cost shows here even when the cores are full.
        watched = {"proxy": self.procs.get(target), "origin": self.procs.get("nginx")}
        before = {k: cpu_seconds(p.pid) for k, p in watched.items() if p}
        gen_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=(seconds or self.args.seconds) + 120,
                             **self.pinned("loadgen"))
        gen_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        if not lines:
            return {"error": (out.stdout + out.stderr).strip()[-200:]}
        r = json.loads(lines[-1])
        done = max(r.get("requests", 0), 1)
        for k, p in watched.items():
            if p:
                r["cpu_us_" + k] = (cpu_seconds(p.pid) - before[k]) * 1e6 / done
        r["cpu_us_loadgen"] = (gen_after.ru_utime + gen_after.ru_stime - gen_before.ru_utime -
                               gen_before.ru_stime) * 1e6 / done
        resumed = ", %d TLS sessions resumed" % r["resumed"] if mode == "newconn" and "resumed" in r else ""
        print("  %-9s %-40s %s%s" % (target, url.split("/")[-1] + " " + mode + " x%d" % connections,
                                     out.stdout.splitlines()[0], resumed), flush=True)
        return r

    def h2(self, target, path, connections=4, streams=32):
        """HTTP/2 through the bump: h2load (Debian nghttp2-client), `connections` connections with
        `streams` concurrent streams each. h2load cannot use a proxy: socat (PROXY: address) makes
        the CONNECT for each of its connections, then relays bytes; its CPU is not the proxy's."""
        url = "https://bench.test:%d/%s" % (self.tls_port, path)
        shim = free_port()
        if self.proxy[target]:
            host = "127.0.0.1" if target == "mitmproxy" else "bench.test"  # mitmproxy has no hosts file
            phost, pport = self.proxy[target].split(":")
            relay = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay" % shim,
                                      "PROXY:%s:%s:%d,proxyport=%s,nodelay" % (phost, host, self.tls_port, pport)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            relay = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,nodelay" % shim,
                                      "TCP:127.0.0.1:%d,nodelay" % self.tls_port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(shim, relay, "socat")
            watched = self.procs.get(target)
            before = cpu_seconds(watched.pid) if watched else 0
            out = subprocess.run(["h2load", "-c", str(connections), "-m", str(streams), "-D", str(self.args.seconds),
                                  "--warm-up-time=1", "--connect-to=127.0.0.1:%d" % shim, url],
                                 capture_output=True, text=True, timeout=self.args.seconds + 120)
            cpu = cpu_seconds(watched.pid) - before if watched else 0
        finally:
            relay.terminate()
            relay.wait()
        rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out.stdout)
        done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out.stdout)
        proto = re.search(r"Application protocol: (\S+)", out.stdout)
        mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out.stdout)
        if not rps or not done:
            return {"error": (out.stdout + out.stderr).strip()[-300:]}
        r = {"rps": float(rps.group(1)), "done": int(done.group(1)), "failed": int(done.group(3)),
             "protocol": proto.group(1) if proto else "?", "mean": mean.group(1) if mean else "?"}
        if watched:
            r["cpu_us_proxy"] = cpu * 1e6 / max(r["done"], 1)
        print("  %-9s %s x%d connections x%d streams: %.0f req/s, %s, mean %s, proxy CPU %s us/req%s" % (
            target, path, connections, streams, r["rps"], r["protocol"], r["mean"],
            "%.0f" % r["cpu_us_proxy"] if "cpu_us_proxy" in r else "-",
            ", %d failed" % r["failed"] if r["failed"] else ""), flush=True)
        if r["failed"]:
            r["errors"] = r["failed"]
        return r

    def idle(self, target, n):
        """Resident memory per idle bumped connection: n CONNECTs, each with its TLS handshake and
        one request answered, then held open; (RSS after - RSS before) / n, in a proxy process
        started afresh (after the other scenarios its free heap would absorb the connections)."""
        if not self.proxy[target]:
            return None
        self.restart(target)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = n + 1000 if hard == resource.RLIM_INFINITY else min(n + 1000, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
        n = min(n, want - 1000)
        ctx = ssl.create_default_context(cafile=self.cafile[target])
        host, port = self.proxy[target].split(":")
        pid = self.procs[target].pid
        time.sleep(1)
        before = rss_kib(pid)
        held, errors = [], 0
        for _ in range(n):
            try:
                s = socket.create_connection((host, int(port)), timeout=10)
                s.sendall(b"CONNECT bench.test:%d HTTP/1.1\r\nHost: bench.test:%d\r\n\r\n" % (self.tls_port, self.tls_port))
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed")
                    head += chunk
                t = ctx.wrap_socket(s, server_hostname="bench.test")
                # Host with the port, as the CONNECT named it: Vigil answers a mismatch with 421 and
                # closes (earlier sessions' figures measured those closed connections: ~1 KiB).
                t.sendall(b"GET /1k HTTP/1.1\r\nHost: bench.test:%d\r\n\r\n" % self.tls_port)
                got = b""
                while len(got) < 1024 or b"\r\n\r\n" not in got:
                    chunk = t.recv(65536)
                    if not chunk:
                        raise OSError("closed")
                    got += chunk
                if not got.startswith(b"HTTP/1.1 200"):
                    raise OSError("answered " + got.split(b"\r\n", 1)[0].decode("latin-1"))
                held.append(t)
            except (OSError, ssl.SSLError):
                errors += 1
        # Idle means idle for a while: Vigil parks a connection quiet for 1 s (its origin side
        # goes to the pool or closes, its buffers are let go) and gives the freed heap back at
        # most every 10 s; 12 s lets both happen (the other proxies do not change meanwhile).
        time.sleep(12)
        after = rss_kib(pid)
        for t in held:
            t.close()
        time.sleep(3)  # and when they close, is the memory given back?
        closed = rss_kib(pid)
        per = (after - before) / max(len(held), 1)
        print("  %-9s %d idle bumped connections held (%d failed): RSS %d -> %d KiB, %.1f KiB each; "
              "%d KiB after they closed" % (target, len(held), errors, before, after, per, closed), flush=True)
        return {"kib_per_conn": per, "held": len(held), "errors": errors, "rss_after_close_kib": closed}


def main():
    # A SIGTERM (e.g. from `timeout`) still stops every server started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--targets", default="direct,vigil,squid,mitmproxy")
    ap.add_argument("--scenarios", default="keepalive,paced,newconn,bulk1m,bulk16m,plain,first,idle,h2")
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--paced-rate", type=int, default=10000,
                    help="requests/s offered to every target in the paced scenario")
    ap.add_argument("--vigil-cache", action="store_true",
                    help="leave Vigil's HTTP cache on (its hits are then measured, not proxying)")
    ap.add_argument("--pin", action="store_true",
                    help="origin and load generator on the first CPU, the proxy on the others")
    ap.add_argument("--vigil-set", action="append", default=[], metavar="KEY=VALUE",
                    help="one more configuration setting for Vigil (repeatable), e.g. proxy.threads=1")
    args = ap.parse_args()
    if args.pin and len(os.sched_getaffinity(0)) < 2:
        ap.error("--pin needs at least two CPUs")
    targets = args.targets.split(",")
    scenarios = args.scenarios.split(",")
    b = Bench(args)
    results = {}
    try:
        b.pki()
        b.nginx()
        for t in targets:
            if t != "direct":
                getattr(b, t)()
        https = "https://bench.test:%d/" % b.tls_port
        plain = "http://bench.test:%d/" % b.plain_port
        plan = {
            "keepalive": ("keep-alive HTTPS 1 KiB x32, req/s", lambda t: b.load(t, https + "1k")),
            # Tail latency at the same offered load for every target (the closed-loop keep-alive
            # run above loads each proxy as hard as it goes, so a faster one also fills the
            # shared cores more): --paced-rate requests/s over 32 keep-alive connections.
            "paced": ("keep-alive HTTPS 1 KiB x32 at %d req/s, req/s" % args.paced_rate,
                      lambda t: b.load(t, https + "1k", rate=args.paced_rate)),
            "newconn": ("new connection per request 1 KiB x32, req/s", lambda t: b.load(t, https + "1k", "newconn")),
            "bulk1m": ("bulk 1 MiB x4, MB/s", lambda t: b.load(t, https + "1m", connections=4)),
            "bulk16m": ("bulk 16 MiB x1, MB/s", lambda t: b.load(t, https + "16m", connections=1)),
            "plain": ("plain HTTP keep-alive 1 KiB x32, req/s", lambda t: b.load(t, plain + "1k")),
            "first": ("first contact (new name each), x1, latency ms",
                      lambda t: b.load(t, https + "1k", "newconn", connections=1, distinct=1000000)),
            "idle": ("idle bumped connection, KiB resident", lambda t: b.idle(t, args.idle)),
            # Many streams over few connections (issue 29): h2load, 4 connections x 32 streams.
            "h2": ("HTTP/2 1 KiB, 4 connections x 32 streams (h2load), req/s", lambda t: b.h2(t, "1k")),
        }
        for s in scenarios:
            title, run = plan[s]
            print(title, flush=True)
            for t in targets:
                if s == "first" and t not in ("vigil",):
                    continue  # only Vigil's hosts file maps every name under bench.test
                if s == "h2" and t == "squid":
                    continue  # Squid does not speak HTTP/2 to clients
                if s == "idle" and t == "mitmproxy":
                    continue  # ~80 handshakes/s: 10,000 would take minutes, and it is not the bar
                if s == "plain" and t == "direct":
                    results[(s, t)] = b.load(t, plain.replace("bench.test", "127.0.0.1") + "1k")
                    continue
                results[(s, t)] = run(t)
        if "vigil" in targets and any(s in scenarios for s in ("keepalive", "plain")):
            results[("audit", "vigil")] = audit_writer(args.bin)
    finally:
        b.stop_all()
        report(results, targets, scenarios)


def audit_writer(bin_dir):
    """The audit writer's sustained records/s on this machine, in the same run (issue 28 asks
    for at least 3x the gateway's own peak request rate)."""
    exe = os.path.join(bin_dir, "vigil_audit_bench")
    if not os.path.exists(exe):
        return {"error": "vigil_audit_bench not built (make bench-compare builds it)"}
    print("audit writer, records/s (BM_WriterThroughput, 200,000 records)", flush=True)
    out = subprocess.run([exe, "--benchmark_filter=BM_WriterThroughput/200000/32", "--benchmark_format=json"],
                         capture_output=True, text=True, timeout=600)
    try:
        bench = json.loads(out.stdout)["benchmarks"]
        rate = max(b["records_per_s"] for b in bench)
    except (ValueError, KeyError):
        return {"error": (out.stdout + out.stderr).strip()[-200:]}
    print("  vigil     %.0f records/s" % rate, flush=True)
    return {"records_per_s": rate}


def report(results, targets, scenarios):
    def val(s, t):
        r = results.get((s, t))
        if not r or "error" in r:
            return None
        if s == "idle":
            return r["kib_per_conn"]
        if s.startswith("bulk"):
            return r["mbps"]
        return r["rps"]

    print("\n| scenario | " + " | ".join(targets) + " | Vigil/Squid | Vigil/direct |")
    print("|---|" + "---|" * (len(targets) + 2))
    for s in scenarios:
        cells = []
        for t in targets:
            v = val(s, t)
            cells.append("—" if v is None else ("%.1f" % v if s == "idle" else "%.0f" % v))
        v, q, d = val(s, "vigil"), val(s, "squid"), val(s, "direct")
        ratio = lambda a, c: "%.2f" % (a / c) if a and c else "—"
        print("| %s | %s | %s | %s |" % (s, " | ".join(cells), ratio(v, q), ratio(v, d)))
    for s in ("keepalive", "paced", "first"):
        if s in scenarios:
            print("%s p50/p99/p99.9 ms: " % s + ", ".join(
                "%s %.2f/%.2f/%.2f" % (t, results[(s, t)]["p50_ms"], results[(s, t)]["p99_ms"], results[(s, t)]["p999_ms"])
                for t in targets if results.get((s, t)) and "error" not in results[(s, t)]))
    print("CPU per request, microseconds (proxy / origin / load generator):")
    for s in scenarios:
        if s == "idle":
            continue
        print("  %-10s " % s + ", ".join(
            "%s %s/%.0f/%.0f" % (t, "%.0f" % r["cpu_us_proxy"] if "cpu_us_proxy" in r else "-", r.get("cpu_us_origin", 0),
                                 r["cpu_us_loadgen"])
            for t in targets for r in [results.get((s, t))] if r and "error" not in r and "cpu_us_loadgen" in r))
    v, m = val("h2", "vigil"), val("h2", "mitmproxy")
    if v and m:
        print("HTTP/2 (issue 29): Vigil / mitmproxy %.2f (%.0f / %.0f req/s)" % (v / m, v, m))
    targets_report(results)
    errs = {k: v for k, v in results.items() if v and ("error" in v or v.get("errors"))}
    for (s, t), v in errs.items():
        print("errors in %s/%s: %s" % (s, t, v.get("error") or v.get("errors")))


def targets_report(results):
    """The ratios issue 28 sets, each against its target, from this run's figures."""
    def ok(r, key="rps"):
        return r if r and "error" not in r and key in r else None
    lines = []
    v, q = ok(results.get(("keepalive", "vigil"))), ok(results.get(("keepalive", "squid")))
    if v and q and "cpu_us_proxy" in v and "cpu_us_proxy" in q:
        ratio = v["cpu_us_proxy"] / q["cpu_us_proxy"]
        lines.append(("keep-alive CPU per request, Vigil / Squid", "%.2f (%.0f / %.0f us)" % (
            ratio, v["cpu_us_proxy"], q["cpu_us_proxy"]), "<= 0.50", ratio <= 0.5))
        lines.append(("keep-alive p99 (each as fast as it goes)", "%.2f (%.2f / %.2f ms)" % (
            v["p99_ms"] / q["p99_ms"], v["p99_ms"], q["p99_ms"]), "<= 1.00", v["p99_ms"] <= q["p99_ms"]))
    v, q = ok(results.get(("paced", "vigil"))), ok(results.get(("paced", "squid")))
    if v and q:
        lines.append(("paced keep-alive p99 (same offered load)", "%.2f (%.2f / %.2f ms)" % (
            v["p99_ms"] / q["p99_ms"], v["p99_ms"], q["p99_ms"]), "<= 1.00", v["p99_ms"] <= q["p99_ms"]))
    v, d = ok(results.get(("bulk1m", "vigil")), "mbps"), ok(results.get(("bulk1m", "direct")), "mbps")
    if v and d:
        ratio = v["mbps"] / d["mbps"]
        lines.append(("bulk 1 MiB x4, Vigil / direct", "%.3f" % ratio, ">= 0.80", ratio >= 0.8))  # 0.796 is not 0.80
    v, d = ok(results.get(("newconn", "vigil"))), ok(results.get(("newconn", "direct")))
    if v and d:
        ratio = v["rps"] / d["rps"]
        lines.append(("new connections, Vigil / direct", "%.3f" % ratio, ">= 1.00", ratio >= 1.0))
    a = ok(results.get(("audit", "vigil")), "records_per_s")
    # The peak is the keep-alive scenarios' rate (new connections are far slower, and paced
    # runs are capped by the load generator).
    peaks = [r["rps"] for (s, t), r in results.items() if t == "vigil" and s in ("keepalive", "plain") and ok(r)]
    if a and peaks:
        ratio = a["records_per_s"] / max(peaks)
        lines.append(("audit writer / Vigil's peak request rate", "%.2f (%.0f records/s / %.0f req/s)" % (
            ratio, a["records_per_s"], max(peaks)), ">= 3.00", ratio >= 3.0))
    if lines:
        print("Targets (issue 28), this run:")
        for what, value, target, met in lines:
            print("  %-44s %-34s target %s  %s" % (what, value, target, "met" if met else "NOT MET"))


if __name__ == "__main__":
    sys.exit(main())
