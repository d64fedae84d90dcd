"""HAProxy and rsyslog for the scale-out tests, from Debian's packages, on loopback in a
temporary folder, stopped by PID."""
import os
import signal
import subprocess
import time

from identity_servers import free_port, stop, wait_port


class Haproxy:
    """mode tcp in front of `backends` [(proxy port, admin port)], PROXY v2 to each, health
    checked with GET /readyz on the admin listener every 200 ms."""

    def __init__(self, workdir, backends, name="haproxy"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        servers = "".join(
            "    server g%d 127.0.0.1:%d send-proxy-v2 source 127.0.0.1 check port %d inter 200ms fall 1 rise 2\n"
            % (i + 1, proxy_port, admin_port) for i, (proxy_port, admin_port) in enumerate(backends))
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write("global\n    maxconn 2000\n"
                    "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
                    "    retries 2\n    option redispatch\n"
                    "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
                    "backend be\n    balance roundrobin\n    option httpchk\n    http-check send meth GET uri /readyz\n"
                    "    http-check expect status 200\n%s" % (self.port, servers))
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "haproxy")

    def close(self):
        stop(self.proc)


class Rsyslog:
    """A central collector: RFC 5424 over TCP (octet-counted framing) into one JSON-lines file,
    the message part only."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "rsyslog")
        os.makedirs(os.path.join(self.dir, "work"), exist_ok=True)
        self.port = free_port()
        self.file = os.path.join(self.dir, "central.jsonl")
        self.conf = os.path.join(self.dir, "rsyslog.conf")
        with open(self.conf, "w") as f:
            f.write('global(maxMessageSize="64k" workDirectory="%s")\n' % os.path.join(self.dir, "work") +
                    'module(load="imtcp")\n'
                    'template(name="msgonly" type="string" string="%msg%\\n")\n'
                    'ruleset(name="central") {\n'
                    '    action(type="omfile" file="' + self.file + '" template="msgonly" flushOnTXEnd="on")\n'
                    '}\n'
                    'input(type="imtcp" port="%d" address="127.0.0.1" ruleset="central")\n' % self.port)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["rsyslogd", "-n", "-f", self.conf, "-i", os.path.join(self.dir, "rsyslog.pid")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "rsyslogd")

    def stop(self):
        stop(self.proc)

    def close(self):
        self.stop()
