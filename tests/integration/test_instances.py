"""Settings that need a gateway process of their own: client allow-lists, private and loop
destinations, shutdown under load, slowloris, non-TLS after CONNECT, origin timeouts, key
permissions and configuration errors. The real vigil binary, real clients, local origins."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (free_port, Origin, Pki, Recorder, Vigil, VIGIL, VIGIL_CA, connect_tunnel, curl, make_workdir,
                     remove_workdir, run)

W = {}


def thread_niceness(v):
    """The gateway's threads by name, as top -H and perf show them, with their nice values
    (field 19 of /proc/PID/task/TID/stat)."""
    threads = {}
    task = "/proc/%d/task" % v.proc.pid
    for tid in os.listdir(task):
        with open(os.path.join(task, tid, "comm")) as f:
            name = f.read().strip()
        with open(os.path.join(task, tid, "stat")) as f:
            threads[name] = int(f.read().rsplit(")", 1)[1].split()[16])
    return threads


def setUpModule():
    d = W["dir"] = make_workdir()
    W["ca"] = os.path.join(d, "ca")
    run([VIGIL_CA, "init", "--dir", W["ca"], "--org", "Vigil integration"])
    pki = W["pki"] = Pki(d)
    W["good"] = Origin("good", *pki.leaf("good", "good.test"))
    W["plain"] = Origin("plain")
    hosts = W["hosts"] = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("# test names all live on loopback\n127.0.0.1 *.test\n")


def tearDownModule():
    for k in ("good", "plain"):
        if k in W:
            W[k].close()
    remove_workdir(W["dir"])


def https_url(name, path="/hello"):
    return "https://%s.test:%d%s" % (name, W[name].port, path)


def plain_url(path):
    return "http://plain.test:%d%s" % (W["plain"].port, path)


class SeparateInstanceTest(unittest.TestCase):
    """Settings that need their own gateway process."""

    def test_second_gateway_on_the_same_address_refuses_to_start(self):
        # SO_REUSEPORT would let it share the port and take part of the traffic silently.
        port = free_port()
        first = Vigil(W["dir"], W["ca"], extra_args=["--listen", "127.0.0.1:%d" % port])
        try:
            second = Vigil(W["dir"], W["ca"], extra_args=["--listen", "127.0.0.1:%d" % port], expect_start=False)
            self.assertNotEqual(second.proc.wait(timeout=15), 0)
            self.assertIn("already listens there", second.read_log())
            self.assertEqual(first.port, port)
            self.assertIsNone(first.proc.poll())  # the first one serves on, alone
        finally:
            self.assertEqual(first.stop()[0], 0)

    def test_client_outside_allow_clients_is_refused(self):
        v = Vigil(W["dir"], W["ca"], extra_args=["--set", 'proxy.allow_clients=["10.0.0.0/8"]'])
        try:
            code, status, headers, body, err = curl("-x", v.proxy, plain_url("/hello"), timeout=10)
            self.assertNotEqual(code, 0)
            self.assertEqual(status, 0)
        finally:
            rc, counters = v.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(counters["refused_client"], 1)
        self.assertEqual(counters["requests"], 0)

    def test_private_destinations_refused_by_default(self):
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_ca=W["pki"].ca_pem,
                  extra_args=["--set", "proxy.allowed_connect_ports=[%d]" % W["good"].port])
        try:
            code, status, headers, body, err = curl("-x", v.proxy, plain_url("/hello"))
            self.assertEqual(status, 403)
            self.assertIn("X-Vigil-Reason: private_destination", headers)
            code, status, headers, body, err = curl("-x", v.proxy, "--cacert", os.path.join(W["ca"], "root.pem"),
                                                    https_url("good"))
            self.assertEqual(status, 403)
            # The gateway's own address is a loop, whatever the private-destination setting.
            code, status, headers, body, err = curl("-x", v.proxy, "http://127.0.0.1:%d/" % v.port)
            self.assertEqual(status, 508)
        finally:
            rc, counters = v.stop()
        self.assertEqual((counters["private_denied"], counters["loop_denied"]), (2, 1))

    def test_loop_to_own_address_is_refused(self):
        v = Vigil(W["dir"], W["ca"], extra_args=["--set", "proxy.allow_private_destinations=true"])
        try:
            code, status, headers, body, err = curl("-x", v.proxy, "http://127.0.0.1:%d/x" % v.port)
            self.assertEqual(status, 508)
            self.assertIn("X-Vigil-Reason: loop_detected", headers)
        finally:
            rc, counters = v.stop()
        self.assertEqual(counters["loop_denied"], 1)

    def test_repeated_sigterms_during_shutdown_still_exit_0(self):
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=["--set", "proxy.allow_private_destinations=true"])
        for _ in range(200):  # a supervisor that keeps asking, through the whole shutdown
            if v.proc.poll() is not None:
                break
            v.proc.send_signal(signal.SIGTERM)
            time.sleep(0.002)
        rc, counters = v.stop()
        with open(v.log_path) as f:
            self.assertEqual(rc, 0, f.read()[-2000:])
        self.assertIn("accepted", counters)  # it got as far as writing its counters

    def test_sigterm_finishes_in_flight_response_and_exits_0(self):
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=["--set", "proxy.allow_private_destinations=true"])
        result = {}

        def fetch():
            result["r"] = curl("-x", v.proxy, plain_url("/slow"), timeout=30)

        t = threading.Thread(target=fetch)
        t.start()
        time.sleep(0.6)  # the response is under way (it takes 2 s)
        # An idle keep-alive client must not hold up the shutdown.
        idle = socket.create_connection(("127.0.0.1", v.port))
        time.sleep(0.1)
        v.proc.send_signal(signal.SIGTERM)
        t.join(30)
        rc, counters = v.stop()
        code, status, headers, body, err = result["r"]
        self.assertEqual((code, status), (0, 200), err)
        self.assertEqual(body, b"0123456789" * 10)
        self.assertEqual(rc, 0)
        self.assertEqual(counters["plain"], 1)
        idle.close()

    def test_1000_slowloris_connections_do_not_starve_a_normal_client(self):
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=[
            "--set", "proxy.allow_private_destinations=true", "--set", "limits.max_connections_per_client=300"])
        slow = []
        try:
            for _ in range(1000):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))  # the attacker's address
                s.connect(("127.0.0.1", v.port))
                s.sendall(b"GET " + plain_url("/hello").encode() + b" HTTP/1.1\r\nX-Slow: ")
                slow.append(s)
            time.sleep(0.5)
            code, status, headers, body, err = curl("-x", v.proxy, plain_url("/hello"), timeout=10)
            self.assertEqual((code, status, body), (0, 200, b"hello from plain"), err)
        finally:
            for s in slow:
                s.close()
            rc, counters = v.stop()
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(counters["refused_limit"], 700)  # all but 300 were closed at once

    def test_non_tls_after_connect_is_refused_or_tunnelled(self):
        rec = Recorder()
        try:
            for mode in ("reject", "tunnel"):
                v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=[
                    "--set", "proxy.allow_private_destinations=true",
                    "--set", "proxy.allowed_connect_ports=[%d]" % rec.port, "--set", 'tls.non_tls="%s"' % mode])
                try:
                    s, resp = connect_tunnel(v.port, "raw.test:%d" % rec.port)
                    self.assertTrue(resp.startswith(b"HTTP/1.1 200"))
                    s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                    time.sleep(0.5)
                    s.close()
                finally:
                    rc, counters = v.stop()
                self.assertEqual(counters["non_tls"], 1)
                time.sleep(0.2)
                if mode == "reject":
                    self.assertEqual((rec.connections, rec.received), (0, b""))
                else:
                    self.assertEqual(rec.received, b"SSH-2.0-OpenSSH_9.2\r\n")
        finally:
            rec.close()

    def test_silent_origin_is_504(self):
        v = Vigil(W["dir"], W["ca"], hosts=W["hosts"], extra_args=[
            "--set", "proxy.allow_private_destinations=true", "--set", "timeouts.io=1"])
        silent = Recorder()  # accepts and reads, never answers
        try:
            code, status, headers, body, err = curl("-x", v.proxy, "http://silent.test:%d/" % silent.port)
            self.assertEqual(status, 504)
            self.assertIn("X-Vigil-Reason: upstream_timeout", headers)
            self.assertIn(b"did not send a response in time", body)
        finally:
            silent.close()
            rc, counters = v.stop()
        self.assertEqual(counters["upstream_timeout"], 1)

    def test_threads_are_named_for_operators(self):
        audit = os.path.join(W["dir"], "names-audit.db")
        v = Vigil(W["dir"], W["ca"], extra_args=["--audit", audit])
        try:
            # The ready file can come before every thread has named itself (seen once under the
            # full suite's load): wait for the names, a few seconds at most.
            deadline = time.time() + 5
            niceness = thread_niceness(v)
            while not {"vigil-w0", "vigil-w1", "vigil-audit", "vigil-checkpt"} <= set(niceness) and time.time() < deadline:
                time.sleep(0.05)
                niceness = thread_niceness(v)
            names = list(niceness)
        finally:
            rc, counters = v.stop()
        self.assertEqual(rc, 0)
        # The WAL checkpointer yields to the workers; they and the writer run at nice 0.
        self.assertEqual(niceness["vigil-checkpt"], 10)
        self.assertEqual((niceness["vigil-w0"], niceness["vigil-audit"]), (0, 0))
        # top -H, perf and gdb tell the two workers (--threads 2), the audit writer, its
        # checkpointer, the rule reloader and the password pool apart; main keeps the name.
        for name in ("vigil", "vigil-w0", "vigil-w1", "vigil-audit", "vigil-checkpt", "vigil-rules", "vigil-auth"):
            self.assertIn(name, names)
        self.assertNotIn("vigil-w2", names)

    def test_one_worker_per_cpu_the_process_may_use(self):
        # proxy.threads = 0 counts the CPUs in the affinity mask (taskset, a container's
        # cpuset), not the machine's: started on one CPU of several, one worker.
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            self.skipTest("needs a machine with two CPUs")
        os.sched_setaffinity(0, {cpus[0]})  # inherited by the gateway started here
        try:
            v = Vigil(W["dir"], W["ca"], hosts=W["hosts"],
                      extra_args=["--threads", "0", "--set", "proxy.allow_private_destinations=true"])
        finally:
            os.sched_setaffinity(0, cpus)
        try:
            names = list(thread_niceness(v))
            code, status, _, _, err = curl("-x", v.proxy, plain_url("/hello"))
        finally:
            v.stop()
        self.assertIn("vigil-w0", names)
        self.assertNotIn("vigil-w1", names)
        self.assertEqual((code, status), (0, 200), err)

    def test_group_readable_key_is_refused(self):
        import shutil
        ca = os.path.join(W["dir"], "ca-loose")
        shutil.copytree(W["ca"], ca)
        os.chmod(os.path.join(ca, "issuing.key"), 0o640)
        p = subprocess.run([VIGIL, "--ca-dir", ca, "--check-config"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("chmod 600", p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1)

    def test_config_errors_are_one_line_naming_the_key(self):
        bad = os.path.join(W["dir"], "bad.toml")
        with open(bad, "w") as f:
            f.write("[proxy]\nlisten = \"127.0.0.1:0\"\nthreads = \"many\"\n")
        cases = [
            (["--config", bad], "bad.toml:3: proxy.threads: expected an integer"),
            (["--set", "proxy.allowed_connect_ports=[0]"], "proxy.allowed_connect_ports"),
            (["--set", "proxy.nonsense=1"], "proxy.nonsense: unknown key"),
            (["--set", "proxy.allow_clients=[\"300.1.1.1/8\"]"], "proxy.allow_clients"),
            (["--log-level", "loud"], "log.level"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                p = subprocess.run([VIGIL, "--check-config", "--ca-dir", W["ca"]] + args, capture_output=True,
                                   text=True)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(expected, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = subprocess.run([VIGIL, "--check-config", "--ca-dir", W["ca"], "--config",
                            os.path.join(os.path.dirname(__file__), "..", "..", "config", "vigil.example.toml")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_config_paths_are_relative_to_the_config_file(self):
        # The file names its CA folder as "ca"; vigil runs from "/": the folder next to the file is
        # the one used (before, "./ca" from the current directory was looked for, and failed).
        d = os.path.join(W["dir"], "etc-vigil")
        os.makedirs(d, exist_ok=True)
        shutil.copytree(W["ca"], os.path.join(d, "ca"), dirs_exist_ok=True)
        conf = os.path.join(d, "vigil.toml")
        with open(conf, "w") as f:
            f.write('[tls]\nca_dir = "ca"\n')
        p = subprocess.run([VIGIL, "--check-config", "--config", conf], capture_output=True, text=True, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(conf, "w") as f:
            f.write('[tls]\nca_dir = "missing"\n')
        p = subprocess.run([VIGIL, "--check-config", "--config", conf], capture_output=True, text=True, cwd="/")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(os.path.join(d, "missing"), p.stderr)


if __name__ == "__main__":
    unittest.main()
