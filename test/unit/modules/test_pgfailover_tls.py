"""
The certificate checks of ssl mode ca (_modules/pgfailover_tls.py) on real
PEM files made here: every refusal names the pillar key and the file.
"""

import datetime
import ipaddress
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers.source import load

tls = load("_modules/pgfailover_tls.py", "pgfailover_tls")
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server(ca, names=("pg1", "10.147.0.11"), before=NOW - DAY, after=NOW + 30 * DAY):
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    alternative = [
        x509.IPAddress(ipaddress.ip_address(name)) if name[0].isdigit() else x509.DNSName(name)
        for name in names
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(after)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def write(tmp_path, ca, server):
    paths = {name: str(tmp_path / name) for name in ("ca.crt", "server.crt", "server.key")}
    (tmp_path / "ca.crt").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.crt").write_bytes(server[0].public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(
        server[1].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths["ca.crt"], paths["server.crt"], paths["server.key"]


@pytest.fixture(scope="module")
def ca():
    return make_ca("lab-ca")


def test_matching_files_naming_the_host_pass(tmp_path, ca):
    files = write(tmp_path, ca, make_server(ca))
    assert tls.problems(*files, ["pg1", "10.147.0.11"]) == []


def test_a_missing_file_is_named_with_its_pillar_key(tmp_path, ca):
    ca_file, cert, key = write(tmp_path, ca, make_server(ca))
    os.remove(key)
    assert tls.problems(ca_file, cert, key, ["pg1"]) == [f"pillar key ssl:server_key: {key} does not exist"]


def test_a_key_of_another_certificate_is_refused(tmp_path, ca):
    ca_file, cert, _ = write(tmp_path, ca, make_server(ca))
    other = tmp_path / "other"
    other.mkdir()
    _, _, other_key = write(other, ca, make_server(ca))
    assert tls.problems(ca_file, cert, other_key, ["pg1"]) == [
        f"pillar key ssl:server_key: {other_key} is not the key of {cert}"
    ]


def test_an_expired_certificate_is_refused(tmp_path, ca):
    files = write(tmp_path, ca, make_server(ca, before=NOW - 10 * DAY, after=NOW - DAY))
    (problem,) = tls.problems(*files, ["pg1"])
    assert problem.startswith(f"{files[1]} expired on "), problem


def test_a_ca_that_did_not_issue_the_certificate_is_refused(tmp_path, ca):
    files = write(tmp_path, make_ca("other-ca"), make_server(ca))
    assert tls.problems(*files, ["pg1"]) == [
        f"pillar key ssl:ca_file: {files[0]} did not issue {files[1]} (it cannot verify it)"
    ]


def test_a_host_name_missing_from_the_certificate_is_refused(tmp_path, ca):
    files = write(tmp_path, ca, make_server(ca, names=("pg2",)))
    (problem,) = tls.problems(*files, ["pg1"])
    assert f"{files[1]} does not name pg1 among its subject alternative names (pg2)" in problem


def test_a_file_that_is_not_pem_is_refused(tmp_path, ca):
    ca_file, cert, key = write(tmp_path, ca, make_server(ca))
    (tmp_path / "server.crt").write_text("not a certificate")
    (problem,) = tls.problems(ca_file, cert, key, ["pg1"])
    assert problem.startswith(f"pillar key ssl:server_cert: {cert} is not a PEM file"), problem
