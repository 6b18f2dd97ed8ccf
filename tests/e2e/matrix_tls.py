"""The matrix's TLS set-up (tests/e2e/matrix.py, scenario move-tls): a test certificate authority
and a server certificate made at run time with the openssl command line, in the scenario's work
directory, and each client made to trust that CA the way its users would (contract:
tests/e2e/clients/README.md, --tls)."""

import os
import subprocess

from dnsmove import HarnessError

# The JVM's trust store is a PKCS12 file made with keytool; its password protects nothing here.
STOREPASS = "dnsaware-e2e"


class Pki:
    def __init__(self, directory):
        self.dir = directory
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca = os.path.join(directory, "ca.pem")             # what the clients trust
        self.key = os.path.join(directory, "server.key")
        self.cert = os.path.join(directory, "server.pem")       # what the backends serve
        self.truststore = os.path.join(directory, "truststore.p12")


def _run(argv, what):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise HarnessError("%s: %s failed (status %d): %s"
                           % (what, " ".join(argv[:2]), r.returncode, r.stdout.strip()))


def make_pki(directory, names, truststore=False):
    """A CA (P-256, valid two days) and a server certificate it signs, with one DNS
    subjectAltName per name; with truststore, the CA in a PKCS12 trust store for the JVM."""
    pki = Pki(directory)
    os.makedirs(directory, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run(["openssl", "req", "-x509"] + ec + [
        "-keyout", pki.ca_key, "-out", pki.ca, "-days", "2",
        "-subj", "/CN=libdnsaware e2e test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "test CA")
    csr = os.path.join(directory, "server.csr")
    _run(["openssl", "req"] + ec + ["-keyout", pki.key, "-out", csr,
                                    "-subj", "/CN=%s" % names[0]], "server key")
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=%s\n" % ",".join("DNS:" + n for n in names))
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.ca_key,
          "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", pki.cert],
         "server certificate")
    if truststore:
        _run(["keytool", "-importcert", "-noprompt", "-alias", "dnsaware-e2e-ca",
              "-file", pki.ca, "-keystore", pki.truststore, "-storetype", "PKCS12",
              "-storepass", STOREPASS], "JVM trust store")
    return pki


def trust(client, pki, argv, env):
    """The client's command line and environment, speaking HTTPS and trusting the test CA:
    --tls CA_FILE for every adapter; the JVM also needs its trust store on its command line
    (javax.net.ssl.trustStore), node its extra CAs in NODE_EXTRA_CA_CERTS, read at start."""
    argv = argv + ["--tls", pki.ca]
    if client.tls == "jvm":
        argv = argv[:1] + ["-Djavax.net.ssl.trustStore=" + pki.truststore,
                           "-Djavax.net.ssl.trustStoreType=PKCS12",
                           "-Djavax.net.ssl.trustStorePassword=" + STOREPASS] + argv[1:]
    elif client.tls == "node":
        env = dict(env, NODE_EXTRA_CA_CERTS=pki.ca)
    elif client.tls != "ca-file":
        raise HarnessError("client %s cannot speak HTTPS (no --tls in its adapter)" % client.cid)
    return argv, env
