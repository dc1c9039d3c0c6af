"""
Check the certificate files of ``ssl: {mode: ca}`` on this host before
pg_autoctl is given them: each file present and readable, the key matching
the certificate, the certificate valid now, issued by the CA, and naming the
host names it is served under. Uses ``cryptography``, which Salt itself
depends on.
"""

import datetime
import ipaddress
import os

__virtualname__ = "pgfailover_tls"

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - Salt requires it
    HAS_CRYPTOGRAPHY = False


def __virtual__():
    if HAS_CRYPTOGRAPHY:
        return __virtualname__
    return (False, "pgfailover_tls: the cryptography package is not installed")


def problems(ca_file, server_cert, server_key, hostnames=(), user=None):
    """
    What is wrong with this host's CA, server certificate and key, as
    sentences naming the pillar key and the file; an empty list when they
    can serve ``hostnames`` (the names clients and other nodes connect to,
    checked against the certificate's subject alternative names). With
    ``user`` (the service user), each file must also be readable by it:
    pg_autoctl and PostgreSQL open them as that user.

    CLI Example:

    .. code-block:: bash

        salt pg1 pgfailover_tls.problems /etc/pgf/ca.crt /etc/pgf/pg1.crt /etc/pgf/pg1.key '[pg1]' postgres
    """
    found = []
    if user:
        files = (("ssl:ca_file", ca_file), ("ssl:server_cert", server_cert), ("ssl:server_key", server_key))
        found += [
            f"pillar key {key}: {path} cannot be read by {user} (check the file's and its directories' "
            "owner and mode)"
            for key, path in files
            if os.path.exists(path) and not _readable_by(user, path)
        ]
    ca = _load(found, "ssl:ca_file", ca_file, x509.load_pem_x509_certificate)
    cert = _load(found, "ssl:server_cert", server_cert, x509.load_pem_x509_certificate)
    key = _load(
        found,
        "ssl:server_key",
        server_key,
        lambda data: serialization.load_pem_private_key(data, password=None),
    )
    if cert is not None:
        found += _validity(cert, server_cert)
        found += _names(cert, server_cert, hostnames)
        if key is not None and _public(key.public_key()) != _public(cert.public_key()):
            found.append(f"pillar key ssl:server_key: {server_key} is not the key of {server_cert}")
        if ca is not None and not _issued_by(cert, ca):
            found.append(
                f"pillar key ssl:ca_file: {ca_file} did not issue {server_cert} (it cannot verify it)"
            )
    if ca is not None:
        found += _validity(ca, ca_file)
    return found


def _readable_by(user, path):
    """True when ``user`` can open ``path`` (asked as that user: directories' modes count too)."""
    result = __salt__["cmd.run_all"](
        ["test", "-r", path], runas=user, python_shell=False, ignore_retcode=True, cwd="/"
    )
    return result["retcode"] == 0


def _load(found, key, path, parse):
    try:
        with open(path, "rb") as pem:
            return parse(pem.read())
    except FileNotFoundError:
        found.append(f"pillar key {key}: {path} does not exist")
    except OSError as exc:
        found.append(f"pillar key {key}: {path} cannot be read ({exc.strerror})")
    except (ValueError, TypeError) as exc:
        found.append(f"pillar key {key}: {path} is not a PEM file of the expected kind ({exc})")
    return None


def _validity(cert, path):
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        return [f"{path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"]
    if cert.not_valid_before_utc > now:
        return [f"{path} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"]
    return []


def _names(cert, path, hostnames):
    try:
        alternative = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        alternative = x509.SubjectAlternativeName([])
    dns = {name.lower() for name in alternative.get_values_for_type(x509.DNSName)}
    addresses = set(alternative.get_values_for_type(x509.IPAddress))
    missing = [name for name in hostnames if not _named(name, dns, addresses)]
    if missing:
        return [
            f"{path} does not name {', '.join(missing)} among its subject alternative names "
            f"({', '.join(sorted(dns) + sorted(map(str, addresses))) or 'none'}): verify-full would refuse it"
        ]
    return []


def _named(hostname, dns, addresses):
    try:
        return ipaddress.ip_address(hostname) in addresses
    except ValueError:
        return hostname.lower() in dns


def _public(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _issued_by(cert, ca):
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
