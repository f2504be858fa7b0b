"""netlab — test hosts for the tests that need them: network namespaces
joined to this one by veth pairs, with addresses in 198.18.0.0/15 (the range
set aside for benchmarking), and real OpenSSH servers with keys made for the
test.  Everything made is removed by the Case's cleanups (namespaces) and
stopped by PID (sshd)."""
import os
import socket
import subprocess
import time

import obstest as T

SSHD = "/usr/sbin/sshd"


def need_netns():
    T.need_root()
    T.need("ip")
    if not os.path.exists(SSHD):
        raise T.Skip("sshd is not installed")


_seq = [0]


def namespace(case, index):
    """A namespace with one veth to this one: returns (name, its address).
    Host side 198.18.<index>.1/24, namespace side 198.18.<index>.2/24."""
    _seq[0] += 1
    tag = "%d%d" % (os.getpid() % 10000, _seq[0])
    ns, veth = "obs-t%s" % tag, "obv%s" % tag
    inner = "198.18.%d.2" % index

    def sh(*argv):
        subprocess.run(argv, check=True, capture_output=True, timeout=20)
    sh("ip", "netns", "add", ns)
    case.cleanups.append(lambda: subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20))
    sh("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
    case.cleanups.append(lambda: subprocess.run(["ip", "link", "del", veth], capture_output=True, timeout=20))
    sh("ip", "link", "set", veth + "p", "netns", ns)
    sh("ip", "addr", "add", "198.18.%d.1/24" % index, "dev", veth)
    sh("ip", "link", "set", veth, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", inner + "/24", "dev", veth + "p")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", veth + "p", "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    return ns, inner


def keypair(case, name):
    path = os.path.join(case.dir, name)
    if not os.path.exists(path):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path], check=True)
    return path


class Sshd:
    """A real sshd for root with its own host key, trusting `authorized`
    (a public key file), on addr:port, in a namespace if given."""

    def __init__(self, case, name, addr, port, authorized, ns=None):
        self.addr, self.port = addr, port
        d = os.path.join(case.dir, "sshd-" + name)
        os.makedirs(d)
        os.makedirs("/run/sshd", exist_ok=True)
        self.hostkey = keypair(case, "sshd-%s-hostkey" % name)
        auth = os.path.join(d, "authorized_keys")
        with open(authorized + ".pub") as src, open(auth, "w") as dst:
            dst.write(src.read())
        cfg = os.path.join(d, "sshd_config")
        with open(cfg, "w") as f:
            f.write("Port %d\nListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\nPidFile none\n"
                    "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "PermitRootLogin prohibit-password\nLogLevel ERROR\n" % (port, addr, self.hostkey, auth))
        argv = ([ "ip", "netns", "exec", ns] if ns else []) + [SSHD, "-D", "-e", "-f", cfg]
        self.proc = case.spawn(argv)
        deadline = time.time() + 10
        while True:
            try:
                if ns:
                    subprocess.run(["ip", "netns", "exec", ns, "true"], check=True)
                with socket.create_connection((addr, port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("sshd %s did not start: %s" % (name, self.proc.stderr.read()))
                time.sleep(0.1)

    def known_hosts_line(self):
        with open(self.hostkey + ".pub") as f:
            key = " ".join(f.read().split()[:2])
        host = self.addr if self.port == 22 else "[%s]:%d" % (self.addr, self.port)
        return "%s %s\n" % (host, key)


def ssh_config(case, identity, servers):
    """An ssh configuration for the manager: our key, these servers' host keys."""
    known = os.path.join(case.dir, "known_hosts")
    with open(known, "w") as f:
        for s in servers:
            f.write(s.known_hosts_line())
    cfg = os.path.join(case.dir, "ssh_config")
    with open(cfg, "w") as f:
        f.write("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"
                "  StrictHostKeyChecking yes\n  User root\n" % (identity, known))
    return cfg
