"""Real identity servers for the tests, on loopback in a temporary folder, stopped by PID: an MIT
Kerberos KDC (kdb5_util, kadmin.local, krb5kdc) with a realm, a service keytab and users, and an
OpenLDAP slapd with TLS, a service account, users and nested groups."""
import os
import shutil
import signal
import socket
import subprocess
import time

from harness import free_port  # noqa: F401  (re-exported for the scale tests)

REALM = "EXAMPLE.TEST"
SUFFIX = "dc=example,dc=test"


def wait_port(port, proc, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited at start (code %s)" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d" % (what, port))


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Kdc:
    """A throwaway realm EXAMPLE.TEST: `service` gets a keytab, users get passwords."""

    def __init__(self, workdir, service="HTTP/proxy.example.test", users=()):
        self.dir = os.path.join(workdir, "kdc")
        os.makedirs(self.dir)
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.write_conf(free_port())
        open(os.path.join(self.dir, "kadm5.acl"), "w").close()
        self.env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf)
        subprocess.run(["kdb5_util", "create", "-s", "-r", REALM, "-P", "master-password"], env=self.env,
                       check=True, capture_output=True, timeout=60)
        self.service = service
        self.keytab = os.path.join(self.dir, "http.keytab")
        self.kadmin("addprinc -randkey %s" % service)
        self.kadmin("ktadd -k %s %s" % (self.keytab, service))
        os.chmod(self.keytab, 0o600)
        self.passwords = {}
        for user, password in users:
            self.add_user(user, password)
        # The KDC binds its port for UDP and TCP; free_port() can only vouch for TCP at the moment
        # it asked, so a KDC that finds its port taken (it exits at once) gets another one.
        for attempt in range(3):
            if attempt:
                self.write_conf(free_port())
            with open(os.path.join(self.dir, "krb5kdc.err"), "ab") as err:
                self.proc = subprocess.Popen(["krb5kdc", "-n", "-r", REALM, "-P", os.path.join(self.dir, "kdc.pid")],
                                             env=self.env, stdout=subprocess.DEVNULL, stderr=err)
            try:
                wait_port(self.port, self.proc, "krb5kdc")
                return
            except RuntimeError as e:
                stop(self.proc)
                failure = e
        logs = ""
        for name in ("krb5kdc.err", "kdc.log"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    logs += "\n%s: %s" % (name, f.read()[-1500:])
        raise RuntimeError("%s after 3 ports%s" % (failure, logs))

    def write_conf(self, port):
        """krb5.conf and kdc.conf for the KDC on `port` (the database does not depend on it)."""
        self.port = port
        with open(self.krb5_conf, "w") as f:
            f.write("[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n dns_lookup_realm = false\n"
                    " rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n"
                    "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n"
                    "[domain_realm]\n .example.test = %s\n" % (REALM, REALM, port, REALM))
        with open(self.kdc_conf, "w") as f:
            f.write("[kdcdefaults]\n kdc_ports = %d\n kdc_tcp_ports = %d\n"
                    "[realms]\n %s = {\n  database_name = %s/principal\n  key_stash_file = %s/stash\n"
                    "  acl_file = %s/kadm5.acl\n  max_life = 10h\n"
                    "  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n }\n"
                    "[logging]\n kdc = FILE:%s/kdc.log\n" % (port, port, REALM, self.dir, self.dir,
                                                             self.dir, self.dir))

    def kadmin(self, query):
        return subprocess.run(["kadmin.local", "-r", REALM, "-q", query], env=self.env, check=True,
                              capture_output=True, text=True, timeout=60).stdout

    def add_user(self, user, password):
        self.kadmin("addprinc -pw %s %s" % (password, user))
        self.passwords[user] = password

    def kinit(self, user, ccache):
        """A ticket cache for `user` (kinit with the password on standard input); the client env."""
        env = dict(self.env, KRB5CCNAME="FILE:" + ccache)
        subprocess.run(["kinit", user], input=self.passwords[user] + "\n", env=env, check=True, capture_output=True,
                       text=True, timeout=60)
        return env

    def close(self):
        stop(self.proc)


class Slapd:
    """dc=example,dc=test over LDAPS (and StartTLS on a second port): a service account,
    users with passwords, groups (groupOfNames) nested as `groups` says: name -> members, a
    member being "user:NAME" or "group:NAME"."""

    def __init__(self, workdir, pki, users=(), groups=None):
        self.dir = os.path.join(workdir, "slapd")
        os.makedirs(os.path.join(self.dir, "db"))
        self.port, self.starttls_port = free_port(), free_port()
        # libldap checks the URL's host against the certificate (and takes "localhost" for the
        # machine's own name): the URL is the address, in the certificate as an IP SAN.
        key, csr = pki._csr("ldap", "127.0.0.1")
        cert = pki.path("ldap.pem")
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca_pem, "-CAkey", pki.ca_key,
                        "-CAcreateserial", "-out", cert, "-days", "10", "-extfile",
                        pki._ext("ldap", "IP:127.0.0.1")], check=True, capture_output=True)
        self.ca_file = pki.ca_pem
        self.bind_dn = "cn=vigil,ou=services," + SUFFIX
        self.bind_password = "service-password"
        self.conf = os.path.join(self.dir, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write("".join("include /etc/ldap/schema/%s.schema\n" % s for s in ("core", "cosine", "inetorgperson", "nis")) +
                    "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                    "pidfile %s/slapd.pid\n" % self.dir +
                    "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n" % (cert, key) +
                    "database mdb\nmaxsize 20971520\nsuffix \"%s\"\nrootdn \"cn=admin,%s\"\nrootpw admin-password\n"
                    "directory %s/db\n" % (SUFFIX, SUFFIX, self.dir) +
                    "access to attrs=userPassword by self =xw by anonymous auth by * none\n"
                    "access to * by users read by * none\n")
        entries = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n" % SUFFIX]
        for ou in ("people", "groups", "services"):
            entries.append("dn: ou=%s,%s\nobjectClass: organizationalUnit\nou: %s\n" % (ou, SUFFIX, ou))
        entries.append("dn: %s\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: vigil\nsn: vigil\n"
                       "userPassword: %s\n" % (self.bind_dn, self.bind_password))
        for user, password in users:
            entries.append("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n"
                           "userPassword: %s\n" % (user, SUFFIX, user, user, user, password))
        for name, members in (groups or {}).items():
            lines = ["dn: cn=%s,ou=groups,%s" % (name, SUFFIX), "objectClass: groupOfNames", "cn: " + name]
            for m in members:
                kind, value = m.split(":", 1)
                lines.append("member: " + (("uid=%s,ou=people," % value) if kind == "user" else
                                           ("cn=%s,ou=groups," % value)) + SUFFIX)
            entries.append("\n".join(lines) + "\n")
        ldif = os.path.join(self.dir, "data.ldif")
        with open(ldif, "w") as f:
            f.write("\n".join(entries))
        subprocess.run(["slapadd", "-f", self.conf, "-l", ldif], check=True, capture_output=True, timeout=60)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["slapd", "-f", self.conf, "-h", "ldaps://127.0.0.1:%d/ ldap://127.0.0.1:%d/" % (self.port, self.starttls_port),
             "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "slapd")

    @property
    def url(self):
        return "ldaps://127.0.0.1:%d" % self.port

    def stop(self):
        stop(self.proc)

    def close(self):
        self.stop()
