"""Real servers for the end-to-end matrix: redis-server, PostgreSQL, an nginx reverse proxy and
the gRPC backend (tests/e2e/grpc_backend.py).

Every start_* helper takes `spawn`, the driver's `spawn(name, argv, env=None) -> Popen` (own
session, output in <workdir>/<name>.out, killed at cleanup), and `workdir`, an absolute
root-owned directory. Each helper returns the Popen of the server itself (no wrapper process in
between: postgres is started through setpriv, which execs) once the server answers on its
address, and raises RuntimeError with the last lines of its output when it exits early or does
not answer within the timeout.

Names and paths, for a server on ADDR:PORT:
  redis     output redis-ADDR-PORT.out, dir redis-ADDR-PORT/
  postgres  output postgres-ADDR-PORT.out, data pg-ADDR/ (pg-ADDR-PORT/ if PORT is not 5432),
            sockets pgsock-ADDR-PORT/, template pg-template/ (initdb once per workdir)
  nginx     output nginx-ADDR-PORT.out, prefix nginx-ADDR-PORT/ (nginx.conf, error.log,
            nginx.pid, temp dirs)
  gRPC      output grpc-ADDR-PORT.out, call log grpc-ADDR-PORT.jsonl
"""

import fcntl
import glob
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import time

START_TIMEOUT = 10.0
POLL = 0.05
REDIS_SERVER = "/usr/bin/redis-server"
NGINX = "/usr/sbin/nginx"
SETPRIV = "/usr/bin/setpriv"
RUNUSER = "/usr/sbin/runuser"
PG_USER = "postgres"
UNIX_PATH_MAX = 107            # sun_path is 108 bytes, including the NUL
PYTHON3 = "/usr/bin/python3"   # the Debian python, with python3-grpcio
GRPC_BACKEND = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_backend.py")


# --------------------------------------------------------------------------------------------
# common
# --------------------------------------------------------------------------------------------

def _tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError as e:
        return "(no output: %s)" % e
    return "\n".join(lines[-n:]) if lines else "(empty)"


def _tails(paths):
    # the driver's spawn may log elsewhere than workdir: show the logs that exist
    present = [p for p in paths if os.path.exists(p)] or paths
    return "\n".join("--- %s\n%s" % (p, _tail(p)) for p in present)


def _stop(proc):
    """Kill a server that did not come up, with its children when it leads its own group
    (spawn starts it in its own session; never signal the caller's group)."""
    if proc.poll() is None:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _wait_ready(proc, what, probe, logs, timeout=START_TIMEOUT):
    """Call probe() until it returns True. probe may raise OSError (not ready yet).
    On early exit or timeout, kill the process and raise RuntimeError with the logs' tails."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        rc = proc.poll()
        if rc is not None:
            raise RuntimeError("%s exited early with status %s; last output:\n%s"
                               % (what, rc, _tails(logs)))
        try:
            if probe():
                return
        except (OSError, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            _stop(proc)
            raise RuntimeError("%s did not answer within %.0f s (last probe error: %s); "
                               "last output:\n%s" % (what, timeout, last,
                                                     _tails(logs)))
        time.sleep(POLL)


def _port_free(what, host, port):
    """Refuse to start on an address where something already answers: the readiness probe
    would otherwise talk to that other server."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            pass
    except OSError:
        return
    raise RuntimeError("cannot start %s: something already accepts connections on %s"
                       % (what, _fmt_addr(host, port)))


def _fmt_addr(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


# --------------------------------------------------------------------------------------------
# redis
# --------------------------------------------------------------------------------------------

def _redis_ping(addr, port):
    with socket.create_connection((addr, port), timeout=1.0) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(256)
            if not chunk:
                raise ConnectionError("closed before answering PING")
            buf += chunk
    if not buf.startswith(b"+PONG"):
        raise ValueError("PING answered %r" % buf[:100])
    return True


def start_redis(spawn, workdir, addr, port=6379):
    """redis-server on exactly addr:port, no persistence, in the foreground."""
    name = "redis-%s-%d" % (addr, port)
    _port_free("redis-server", addr, port)
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    argv = [REDIS_SERVER,
            "--bind", addr, "--port", str(port),
            "--save", "", "--appendonly", "no",
            "--protected-mode", "no",
            "--daemonize", "no", "--supervised", "no",
            "--dir", d, "--logfile", "",
            "--unixsocket", ""]
    proc = spawn(name, argv)
    _wait_ready(proc, "redis-server on %s:%d" % (addr, port),
                lambda: _redis_ping(addr, port), [os.path.join(workdir, name + ".out")])
    return proc


# --------------------------------------------------------------------------------------------
# postgres
# --------------------------------------------------------------------------------------------

def _pg_bindir():
    best = None
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        ver = os.path.basename(os.path.dirname(d))
        try:
            key = tuple(int(x) for x in ver.split("."))
        except ValueError:
            continue
        if os.access(os.path.join(d, "postgres"), os.X_OK) and (best is None or key > best[0]):
            best = (key, d)
    if best is None:
        raise RuntimeError("no PostgreSQL server found under /usr/lib/postgresql/*/bin "
                           "(Debian package postgresql-<ver>)")
    return best[1]


def _pg_ids():
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError:
        raise RuntimeError("system user %r does not exist (package postgresql)" % PG_USER)
    return pw.pw_uid, pw.pw_gid


def _pg_mkdir(path, uid, gid):
    """A directory owned by postgres, mode 0700 (created or fixed)."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, 0o700)


def _check_reachable(workdir):
    """postgres (not root) must be able to traverse every directory down to workdir."""
    p = os.path.abspath(workdir)
    while True:
        st = os.stat(p)
        if not st.st_mode & 0o001:
            raise RuntimeError("%s (mode %o) is not searchable by others; the postgres user "
                               "cannot reach %s" % (p, st.st_mode & 0o7777, workdir))
        if p == "/":
            return
        p = os.path.dirname(p)


# Settings appended to the template's postgresql.conf: a throwaway server that starts fast.
PG_CONF = """
# libdnsaware e2e: throwaway test server
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 40
max_wal_senders = 0
wal_level = minimal
logging_collector = off
log_destination = 'stderr'
log_min_messages = warning
log_connections = off
log_disconnections = off
listen_addresses = ''
"""


def postgres_template(workdir):
    """initdb once into workdir/pg-template (as user postgres, trust auth). Returns its path.
    A template made earlier by the same PostgreSQL major version is reused (workdir may be a
    cache kept between runs); it is built under a temporary name and renamed into place.
    Scenarios run side by side share the cache: an exclusive lock (workdir/pg-template.lock)
    makes the first build it and the others wait for it, instead of each building its own and
    replacing the template while another copies it."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "pg-template.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _postgres_template(workdir)


def _postgres_template(workdir):
    bindir = _pg_bindir()
    tmpl = os.path.join(workdir, "pg-template")
    marker = ".dnsaware-template-ok"
    try:
        with open(os.path.join(tmpl, marker)) as f:
            if f.read().strip() == bindir:
                return tmpl
    except OSError:
        pass
    uid, gid = _pg_ids()
    os.makedirs(workdir, exist_ok=True)
    _check_reachable(workdir)
    tmp = "%s.tmp-%d" % (tmpl, os.getpid())
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    _pg_mkdir(tmp, uid, gid)
    argv = [RUNUSER, "-u", PG_USER, "--", os.path.join(bindir, "initdb"),
            "-D", tmp, "--auth=trust", "-U", PG_USER, "--no-sync",
            "-E", "UTF8", "--locale=C", "--no-instructions"]
    try:
        r = subprocess.run(argv, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        if r.returncode != 0:
            out = r.stdout.decode("utf-8", "replace").splitlines()
            raise RuntimeError("initdb failed (status %d): %s\n%s"
                               % (r.returncode, " ".join(argv), "\n".join(out[-30:])))
        with open(os.path.join(tmp, "postgresql.conf"), "a") as f:
            f.write(PG_CONF)
        with open(os.path.join(tmp, marker), "w") as f:
            f.write(bindir + "\n")
        os.chown(os.path.join(tmp, marker), uid, gid)
        if os.path.exists(tmpl):
            shutil.rmtree(tmpl)          # stale: another major version, or unfinished
        os.rename(tmp, tmpl)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return tmpl


def _pg_startup_ok(addr, port):
    """Send a StartupMessage; True when the server asks for (or grants) authentication."""
    params = b"user\0" + PG_USER.encode() + b"\0database\0postgres\0\0"
    msg = struct.pack("!ii", 8 + len(params), 196608) + params     # protocol 3.0
    with socket.create_connection((addr, port), timeout=1.0) as s:
        s.sendall(msg)
        head = _recv_exact(s, 5)
        kind, length = head[:1], struct.unpack("!i", head[1:])[0]
        body = _recv_exact(s, length - 4) if 4 < length < 65536 else b""
        if kind == b"R":
            try:
                s.sendall(b"X\0\0\0\4")                           # Terminate
            except OSError:
                pass
            return True
        if kind == b"E":
            # e.g. 57P03 "the database system is starting up": not ready yet
            raise ValueError("server said: %s" % body.replace(b"\0", b" ").decode(
                "utf-8", "replace").strip())
        raise ValueError("unexpected startup answer %r" % head)


def start_postgres(spawn, workdir, addr, port=5432, template=None):
    """postgres on exactly addr:port from a copy of the template, running as user postgres."""
    if template is None:
        template = postgres_template(workdir)
    _port_free("postgres", addr, port)
    bindir = _pg_bindir()
    uid, gid = _pg_ids()
    _check_reachable(workdir)
    data = os.path.join(workdir, "pg-%s" % addr if port == 5432 else "pg-%s-%d" % (addr, port))
    sockdir = os.path.join(workdir, "pgsock-%s-%d" % (addr, port))
    if len(os.path.join(sockdir, ".s.PGSQL.%d.lock" % port)) > UNIX_PATH_MAX:
        raise RuntimeError("workdir path too long for a unix socket: %s" % sockdir)
    if os.path.exists(data):
        shutil.rmtree(data)
    # cp -a keeps owner (postgres) and mode (0700); postgres refuses a data dir otherwise.
    r = subprocess.run(["cp", "-a", template, data], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("copying %s to %s failed: %s"
                           % (template, data, r.stdout.decode("utf-8", "replace")))
    os.chmod(data, 0o700)
    if ":" in addr:
        # initdb trusts 127.0.0.1 and ::1; an IPv6 scene's clients come from fd00::/8 on lo.
        with open(os.path.join(data, "pg_hba.conf"), "a") as f:
            f.write("host all all fd00::/8 trust\n")
    _pg_mkdir(sockdir, uid, gid)
    name = "postgres-%s-%d" % (addr, port)
    # setpriv execs postgres directly: the Popen is the postmaster itself, so the driver's
    # signals reach it (runuser would stay in between as the parent).
    argv = [SETPRIV, "--reuid=%s" % PG_USER, "--regid=%s" % PG_USER, "--init-groups", "--",
            os.path.join(bindir, "postgres"), "-D", data,
            "-c", "listen_addresses=%s" % addr, "-c", "port=%d" % port,
            "-c", "unix_socket_directories=%s" % sockdir]
    proc = spawn(name, argv)
    _wait_ready(proc, "postgres on %s:%d" % (addr, port),
                lambda: _pg_startup_ok(addr, port), [os.path.join(workdir, name + ".out")])
    return proc


# --------------------------------------------------------------------------------------------
# gRPC (tests/e2e/grpc_backend.py)
# --------------------------------------------------------------------------------------------

def _grpc_ready(out_path, addr, port):
    with open(out_path, "rb") as f:
        if b"ready" not in f.read().split():
            return False
    with socket.create_connection((addr, port), timeout=1.0):
        return True


def start_grpc(spawn, workdir, addrs, port=50051):
    """tests/e2e/grpc_backend.py on each of addrs:port, one process per address (all started,
    then each waited for: python grpc takes a while to import). Each logs its calls to
    grpc-ADDR-PORT.jsonl. Returns the Popens."""
    procs = []
    for addr in addrs:
        name = "grpc-%s-%d" % (addr, port)
        _port_free("grpc_backend.py", addr, port)
        procs.append((addr, name, spawn(name, [PYTHON3, GRPC_BACKEND, "--addr", addr,
                                              "--port", str(port), "--log",
                                              os.path.join(workdir, name + ".jsonl")])))
    for addr, name, proc in procs:
        out = os.path.join(workdir, name + ".out")
        _wait_ready(proc, "grpc_backend.py on %s" % _fmt_addr(addr, port),
                    lambda: _grpc_ready(out, addr, port), [out])
    return [p for _, _, p in procs]


# --------------------------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------------------------

def _nginx_modules():
    r = subprocess.run([NGINX, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return r.stdout.decode("utf-8", "replace")


def start_nginx(spawn, workdir, listen_addr, listen_port, upstream_host, upstream_port,
                keepalive=4, workers=2, env=None, keepalive_requests=100000):
    """nginx reverse proxy listen_addr:listen_port -> upstream_host:upstream_port with an
    upstream keep-alive pool. nginx resolves upstream_host once, at start (getaddrinfo).
    keepalive_requests, for the front and the upstream connections alike: nginx's default
    (1000) closes a connection after that many requests, which a busy scenario at 100
    requests/s reaches within its run; the front client's reconnect may then land on the
    other worker, whose upstream connection is another one: the cell would no longer measure
    one busy connection."""
    name = "nginx-%s-%d" % (listen_addr, listen_port)
    _port_free("nginx", listen_addr, listen_port)
    prefix = os.path.join(workdir, name)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    errlog = os.path.join(prefix, "error.log")
    temp = os.path.join(prefix, "temp")
    os.makedirs(temp, exist_ok=True)
    built = _nginx_modules()
    temps = ["client_body_temp_path %s/body;" % temp, "proxy_temp_path %s/proxy;" % temp]
    for mod in ("fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % mod not in built:
            temps.append("%s_temp_path %s/%s;" % (mod, temp, mod))
    text = """\
daemon off;
master_process on;
worker_processes %(workers)d;
user root;
pid %(prefix)s/nginx.pid;
error_log %(errlog)s notice;
lock_file %(prefix)s/nginx.lock;

events {
    worker_connections 1024;
}

http {
    access_log off;
    %(temps)s

    upstream backend {
        server %(upstream)s;
        keepalive %(keepalive)d;
        keepalive_requests %(requests)d;
    }

    server {
        listen %(listen)s;
        keepalive_requests %(requests)d;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host %(host)s;
        }
    }
}
""" % {"workers": workers, "prefix": prefix, "errlog": errlog,
       "temps": "\n    ".join(temps), "upstream": _fmt_addr(upstream_host, upstream_port),
       "keepalive": keepalive, "requests": keepalive_requests, "listen": _fmt_addr(listen_addr, listen_port),
       "host": upstream_host}
    with open(conf, "w") as f:
        f.write(text)
    argv = [NGINX, "-p", prefix + "/", "-c", conf, "-e", errlog]
    proc = spawn(name, argv, env=env)

    def probe():
        with socket.create_connection((listen_addr, listen_port), timeout=1.0):
            return True

    _wait_ready(proc, "nginx on %s" % _fmt_addr(listen_addr, listen_port), probe,
                [errlog, os.path.join(workdir, name + ".out")])
    return proc


def nginx_pids(master_pid):
    """(master, [worker pids]) from /proc: the master's children named 'nginx: worker process'."""
    workers = []
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % ent) as f:
                stat = f.read()
            # the comm field may contain spaces and parentheses: split after the last ')'
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != master_pid:
                continue
            with open("/proc/%s/cmdline" % ent, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError, IndexError):
            continue
        if "worker process" in cmd:
            workers.append(int(ent))
    return master_pid, sorted(workers)
