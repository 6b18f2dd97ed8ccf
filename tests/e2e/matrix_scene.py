"""The matrix's scene (tests/e2e/matrix.py): the DNS responder, the servers and the clients of one
scenario inside its namespace, and the run itself (warm-up, the DNS change or fault, the stop)."""

import os
import socket
import subprocess
import time

import dnsmove  # (namespace, process handling, HTTP backend)
import dnsresponder  # (the programmable DNS server and its client helpers)
import matrix_tls  # (the TLS scenarios' test CA)
import services  # (redis-server, PostgreSQL, nginx, the gRPC backend)
from dnsmove import PYTHON, HarnessError, tail
from dnsmove_ns import read_jsonl
from dnsmove_scene import wait_port
from matrix_clients import ALL_CLIENTS, instance_name
from matrix_layout import (GRPC_PORT, HERE, HTTP_PORT, PG_PORT, REDIS_PORT, TLS_PORT, TTL,
                           TTL_FLOOR)


class MatrixScene(dnsmove.Scene):
    def __init__(self, opts, workdir, scenario, clients):
        super().__init__(opts, workdir)
        self.sc = scenario
        self.net = scenario.net
        self.clients = clients
        self.zone = self.path("zone.json")
        self.dns_log = self.path("dns-queries.jsonl")
        self.responder = None
        self.instances = {}         # (cid, shim) -> Popen of the program we watch
        self.stop_file = self.path("clients.stop")
        self.nginx = {}             # shim -> master Popen
        self.pg_template = None
        self.pki = None             # matrix_tls.Pki in a TLS scenario

    def setup_namespace(self):
        super().setup_namespace()
        if self.net.family == 6:
            self.setup_ipv6()

    def setup_ipv6(self):
        """IPv6 on lo, the scene's fd00::/8 addresses on it (no duplicate address detection:
        usable at once), and resolv.conf naming the program's DNS server by its IPv6 address
        (rewritten in place: it is bind-mounted over /etc/resolv.conf)."""
        with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:
            f.write("0\n")
        for a in self.net.local():
            r = subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise HarnessError("ip -6 addr add %s dev lo failed: %s" % (a, r.stdout.strip()))
        with open(self.path("resolv.conf"), "r+") as f:
            f.truncate(0)
            f.write("nameserver %s\noptions timeout:1 attempts:2\n" % self.net.program_dns)

    # ---- DNS ----
    def zone_names(self, addrs, ttl, mode="answer"):
        names = {}
        for c in self.clients:
            for shim in self.shim_modes(c):
                entry = {"addrs": list(addrs), "ttl": ttl, "mode": mode}
                if self.sc.rotate:
                    entry["rotate"] = self.sc.rotate
                names[instance_name(c, shim)] = entry
        dnsresponder.write_zone(self.zone, names, default="nxdomain")

    def shim_modes(self, client=None):
        """The runs of a client: under the shim, and the control without it when the scenario
        has controls (and the client is not a variant whose original has one)."""
        if self.sc.controls and (client is None or client.control):
            return (True, False)
        return (True,)

    def start_responder(self):
        n = len([p for name, p in self.procs if name.startswith("dns")])
        self.responder = self.spawn(
            "dns.%d" % n,
            [PYTHON, os.path.join(HERE, "dnsresponder.py"), "--listen", self.net.program_dns,
             "--listen", self.net.shim_dns, "--port", "53", "--zone", self.zone,
             "--log", self.dns_log])
        self.wait_dns(lambda rcode, ans: rcode == 0 and ans, "answer")

    def stop_responder(self):
        self.kill(self.responder)
        self.responder = None

    def probe_name(self):
        return instance_name(self.clients[0], True)

    def wait_dns(self, ok, what, timeout=8.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.responder is not None and self.responder.poll() is not None:
                raise HarnessError("the DNS responder exited with status %s:\n%s"
                                   % (self.responder.returncode, tail(self.path("dns.0.out"))))
            try:
                rcode, ans, _ = dnsresponder.query(self.net.program_dns, self.probe_name(),
                                                   self.net.qtype, timeout=0.3,
                                                   src=self.net.driver_src)
                last = (rcode, ans)
                if ok(rcode, ans):
                    return time.time()
            except OSError as e:
                last = e
                if ok(None, None):
                    return time.time()
            time.sleep(0.02)
        raise HarnessError("DNS never reached the state '%s' within %.0fs (last: %r)"
                           % (what, timeout, last))

    # ---- servers ----
    def http_port(self):
        return TLS_PORT if self.sc.tls else HTTP_PORT

    def make_pki(self):
        """The TLS scenarios' test CA and the backends' certificate, valid for every client
        instance's name."""
        names = [instance_name(c, shim) for c in self.clients
                 for shim in self.shim_modes(c)]
        self.pki = matrix_tls.make_pki(self.path("tls"), names,
                                       truststore=any(c.tls == "jvm" for c in self.clients))

    def start_servers(self):
        addrs = sorted(set(self.sc.addrs()) - set(self.sc.refusing))
        protos = {c.proto for c in self.clients}
        if protos & {"http", "nginx"}:
            tls = ["--cert", self.pki.cert, "--key", self.pki.key] if self.pki else []
            if self.sc.answer_delay:
                tls += ["--delay", "%g" % self.sc.answer_delay]
            for a in addrs:
                self.spawn("backend-" + a, [PYTHON, dnsmove.__file__, "backend", "--addr", a,
                                            "--port", str(self.http_port()),
                                            "--log", self.path("backend-%s.jsonl" % a)] + tls)
        if "redis" in protos:
            for a in addrs:
                services.start_redis(self.spawn, self.wd, a, REDIS_PORT)
        if "pg" in protos:
            template = services.postgres_template(self.opts.cache or self.wd)
            for a in addrs:
                services.start_postgres(self.spawn, self.wd, a, PG_PORT, template=template)
        if "grpc" in protos:
            services.start_grpc(self.spawn, self.wd, addrs, GRPC_PORT)
        if protos & {"http", "nginx"}:
            for a in addrs:
                wait_port(a, self.http_port(), "HTTP backend")
        if "nginx" in protos:
            for shim in self.shim_modes():
                c = ALL_CLIENTS["nginx"]
                nwd = self.path("nginx-%s" % ("shim" if shim else "control"))
                os.makedirs(nwd, exist_ok=True)
                self.nginx[shim] = services.start_nginx(
                    self.spawn, nwd, self.net.nginx_listen[shim], HTTP_PORT, instance_name(c, shim),
                    HTTP_PORT, env=self.program_env(c, shim))

    # ---- clients ----
    def program_env(self, client, shim):
        env = dnsmove.clean_env()
        if shim:
            env["LD_PRELOAD"] = dnsmove.preload(self.opts.lib)
            env["DNSAWARE_TTL_FLOOR"] = TTL_FLOOR
            env["DNSAWARE_NAMESERVERS"] = self.net.shim_dns
            env["DNSAWARE_LOG"] = self.opts.log_level
            env["DNSAWARE_LOG_FILE"] = self.path("shim-%s.log" % client.cid)
            # One file per process (nginx has a master and workers), as an operator's
            # node_exporter directory would have them.
            os.makedirs(self.stats_dir(client), exist_ok=True)
            env["DNSAWARE_STATS_FILE"] = os.path.join(self.stats_dir(client), "%p.prom")
            env["DNSAWARE_STATS_INTERVAL"] = "1s"
            # Where the shim keeps a name's last good answers for the user's processes (how a
            # curl process gets the answer the previous one stored): a fresh, empty directory
            # per client run, inside the run's workdir, so no run sees another's answers.
            os.makedirs(self.state_dir(client), mode=0o700, exist_ok=True)
            env["DNSAWARE_STATE_DIR"] = self.state_dir(client)
            env.update(self.sc.env)
            env.update(client.shim_env)
            env.update(kv.split("=", 1) for kv in self.opts.shim_env or [])
        return env

    def stats_dir(self, client):
        return self.path("stats-%s" % client.cid)

    def state_dir(self, client):
        return self.path("state-%s" % client.cid)

    def out_file(self, client, shim):
        return self.path("client-%s-%s.jsonl" % (client.cid, "shim" if shim else "control"))

    def slow_file(self, client, shim):
        return self.path("slow-%s-%s" % (client.cid, "shim" if shim else "control"))

    def start_clients(self):
        for c in self.clients:
            for shim in self.shim_modes(c):
                rate = c.rate or self.sc.rate
                if c.proto == "nginx":
                    target = hostport(self.net.nginx_listen[shim], HTTP_PORT)
                    env = dnsmove.clean_env()       # the front client is not under test
                else:
                    port = self.http_port() if c.proto == "http" else c.port()
                    target = "%s:%d" % (instance_name(c, shim), port)
                    env = self.program_env(c, shim)
                argv = c.argv + ["--target", target, "--rate", "%g" % rate,
                                 "--out", self.out_file(c, shim), "--stop-file", self.stop_file,
                                 "--max-duration", "150"]
                if c.proto in ("redis", "pg"):
                    argv += ["--slow-file", self.slow_file(c, shim)]
                if c.conns > 1:
                    argv += ["--conns", str(c.conns)]
                if self.sc.connection != "keep-alive":
                    argv += ["--connection", self.sc.connection]
                if self.sc.back_to_back:
                    argv.append("--back-to-back")
                if self.pki:
                    argv, env = matrix_tls.trust(c, self.pki, argv, env)
                p = self.spawn("client-%s-%s" % (c.cid, "shim" if shim else "control"), argv,
                               env=env)
                self.instances[(c.cid, shim)] = self.nginx[shim] if c.proto == "nginx" else p
                self.instances[(c.cid, shim, "front")] = p

    def records(self, client, shim):
        return read_jsonl(self.out_file(client, shim))

    def check_alive(self):
        for key, p in self.instances.items():
            if p.poll() is not None:
                cid, shim = key[0], key[1]
                name = "client-%s-%s" % (cid, "shim" if shim else "control")
                raise HarnessError("%s exited early with status %s; output:\n%s"
                                   % (name, p.returncode, tail(self.path(name + ".out"))))

    def wait_all_started(self, timeout=40.0):
        """Until every client (and every one of its connections) has answered once."""
        end = time.monotonic() + timeout
        pending = None
        while time.monotonic() < end:
            self.check_alive()
            pending = []
            for c in self.clients:
                for shim in self.shim_modes(c):
                    reqs = [r for r in self.records(c, shim) if r.get("type") == "req"]
                    # Without the shim, a client that tries only the refusing address never
                    # gets an answer in the failover scenario: any attempt counts there.
                    conns = {r.get("conn", 0) for r in reqs
                             if r.get("ok") or (self.sc.refusing and not shim)}
                    if len(conns) < c.conns:
                        pending.append("%s%s (%d/%d)" % (c.cid, "" if shim else " control",
                                                         len(conns), c.conns))
            if not pending:
                return time.time()
            time.sleep(0.1)
        raise HarnessError("clients not answered within %.0fs: %s" % (timeout, pending))

    def sleep_until(self, t):
        while True:
            d = t - time.time()
            if d <= 0:
                return
            self.check_alive()
            time.sleep(min(d, 0.05))

    def stop_clients(self):
        open(self.stop_file, "w").close()
        end = time.monotonic() + 15
        for key, p in self.instances.items():
            if len(key) == 2 and key[0] == "nginx":
                continue                # the proxy is stopped at cleanup
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise HarnessError("client %s did not stop within 15s" % (key,))

    # ---- facts about the processes ----
    def preloaded(self, pid):
        try:
            with open("/proc/%d/maps" % pid) as f:
                return "libdnsaware" in f.read()
        except OSError:
            return None

    def shim_threads(self, pid):
        n = 0
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                        if f.read().strip() == "dnsaware":
                            n += 1
                except OSError:
                    pass
        except OSError:
            return None
        return n


def refuses(addr, port):
    """The failover scenario stands on this: a connect to addr:port is refused at once."""
    with socket.socket() as s:
        s.settimeout(1.0)
        try:
            s.connect((addr, port))
        except ConnectionRefusedError:
            return
        except OSError as e:
            raise HarnessError("%s:%d should refuse connections, got %s" % (addr, port, e))
    raise HarnessError("%s:%d should refuse connections, but something listens" % (addr, port))


def hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# --------------------------------------------------------------------------------------------
# running a scenario
# --------------------------------------------------------------------------------------------

def run_scenario(scene, opts):
    sc = scene.sc
    scene.zone_names(sc.initial, TTL)
    scene.start_responder()
    if sc.tls:
        scene.make_pki()
    scene.start_servers()
    for a in sc.refusing:
        refuses(a, HTTP_PORT)
    scene.start_clients()
    t_started = scene.wait_all_started()
    scene.sleep_until(t_started + opts.warmup)

    facts = {}
    for (cid, shim, *front), p in scene.instances.items():
        if front:
            continue
        facts[(cid, shim)] = {"preloaded": scene.preloaded(p.pid)}
    if "nginx" in [c.cid for c in scene.clients]:
        for shim, master in scene.nginx.items():
            m, workers = services.nginx_pids(master.pid)
            facts[("nginx", shim)].update(
                master_threads=scene.shim_threads(m),
                worker_threads=[scene.shim_threads(w) for w in workers])

    events = {}
    if sc.slow:
        # Ask each client for one slow request now, so it is in flight when DNS changes.
        for c in scene.clients:
            for shim in scene.shim_modes(c):
                if c.proto in ("redis", "pg"):
                    open(scene.slow_file(c, shim), "w").close()
                else:
                    name = instance_name(c, shim)
                    open(scene.path("slow." + name), "w").close()
        scene.sleep_until(time.time() + 0.5)

    if sc.final is not None:
        # One move, or several (sc.via): change, change2, change3, ...; the deadline is the
        # last move's (each move's is its change + the same offset: matrix_judge.moves).
        t_change = None
        for i, step in enumerate(sc.steps()[1:]):
            if t_change is not None:
                scene.sleep_until(t_change + sc.move_every)
            scene.zone_names(step, sc.ttl_after or TTL)
            want = sorted(step)
            t_change = scene.wait_dns(
                lambda rcode, ans: rcode == 0 and sorted(a for a, _ in ans) == want,
                "answer %s" % want) if not sc.rotate else time.time()
            events["change" if i == 0 else "change%d" % (i + 1)] = t_change
        end = sc.deadline(t_change) + sc.run_after - 3.0
        events["deadline"] = sc.deadline(t_change)
    elif sc.fault is not None:
        mode, seconds = sc.fault
        events["fault_start"] = time.time()
        if mode == "stopped":
            scene.stop_responder()
        else:
            scene.zone_names(sc.initial, TTL, mode=mode)
        scene.sleep_until(events["fault_start"] + seconds)
        if mode == "stopped":
            scene.start_responder()
        else:
            scene.zone_names(sc.initial, TTL)
            scene.wait_dns(lambda rcode, ans: rcode == 0 and ans, "answer")
        events["fault_end"] = time.time()
        end = events["fault_end"] + sc.run_after
    else:
        events["start"] = time.time()
        end = events["start"] + sc.run_after
    scene.sleep_until(end)
    events["stop"] = time.time()
    scene.stop_clients()
    events["end"] = time.time()
    return facts, events

