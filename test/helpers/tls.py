"""
Certificates for the lab's own-CA tests, made here with openssl: a CA, and
per host a key and a certificate naming the host (and its address); put on a
host where the pillar's ssl keys say, as an operator would.
"""

import os
import socket
import ssl
import struct
import subprocess

from cryptography import x509

TLS_DIR = "/etc/pgfailover-tls"


def ssl_pillar(ca="ca.crt"):
    """The pillar's ssl section for the files put here (``ca``: the CA file's name in TLS_DIR)."""
    files = {"ca_file": f"{TLS_DIR}/{ca}", "server_cert": f"{TLS_DIR}/server.crt"}
    return {"mode": "ca", **files, "server_key": f"{TLS_DIR}/server.key"}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


def make_host_certificate(directory, ca, host, address, name=None, also=()):
    """
    A key and a certificate for ``host`` in NAME.key / NAME.crt: its name and
    address as SANs, and ``also`` ((name, address) pairs: HAProxy's, whose
    clients verify the name they connect to).
    """
    name = name or host
    names = [(host, address), *also]
    with open(os.path.join(directory, f"{name}.ext"), "w") as f:
        f.write("subjectAltName = " + ", ".join(f"DNS:{n}, IP:{a}" for n, a in names) + "\n")
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "30", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=directory,
    )  # fmt: skip


def install_host_files(lab, directory, host, name):
    """NAME.crt and NAME.key as the host's server certificate and key, where the pillar says."""
    with open(os.path.join(directory, f"{name}.crt")) as f:
        put(lab, host, f"{TLS_DIR}/server.crt", f.read())
    with open(os.path.join(directory, f"{name}.key")) as f:
        put(lab, host, f"{TLS_DIR}/server.key", f.read(), owner="postgres", mode="0600")


def serial_of(directory, name):
    with open(os.path.join(directory, f"{name}.crt"), "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).serial_number


def served_serial(address, port):
    """The serial number of the certificate a PostgreSQL server presents (SSLRequest, then TLS)."""
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(struct.pack("!ii", 8, 80877103))
        assert sock.recv(1) == b"S"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # only read here; verification is tested with libpq above
        with context.wrap_socket(sock) as tls_socket:
            return x509.load_der_x509_certificate(tls_socket.getpeercert(binary_form=True)).serial_number


def put(lab, host, path, content, owner="root", mode="0644"):
    script = (
        f"install -d -m 0755 {TLS_DIR}; umask 077; cat > {path}; chown {owner} {path}; chmod {mode} {path}"
    )
    lab.run(host, "sh", "-c", script, input=content)
