"""A throwaway certificate so that stock Snowflake clients reach the emulator over HTTPS.

The stock ``SnowflakeHook`` (behind ``SQLExecuteQueryOperator``, ``SnowflakeOperator`` and
friends) has no ``protocol`` setting: it always speaks HTTPS to ``host:port``. A DAG that builds
its training table with stock SQL tasks can therefore only run offline if the emulator serves
TLS with a certificate the connector trusts.

The connector verifies certificates against ``REQUESTS_CA_BUNDLE`` when it is set (its
``ssl_wrap_socket._resolve_cafile`` and requests' own environment merge both read it), and has
no connection parameter for a CA file. So the emulator writes a *bundle*: the public CAs the
process already trusts (``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` if set, else certifi's) plus
its own certificate. Pointing
``REQUESTS_CA_BUNDLE`` at that bundle keeps real Snowflake endpoints verifiable in the same
process. The certificate has no OCSP or CRL responder, so a connection to the emulator also
carries ``insecure_mode`` (the stock extra that turns off revocation checks): revocation
cannot be checked for a certificate made a second ago on this machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: The environment variable both the connector and ``requests`` read a CA bundle from.
CA_BUNDLE_VARIABLE = "REQUESTS_CA_BUNDLE"


@dataclass(frozen=True)
class Certificate:
    """Where a generated certificate, its key and the trust bundle live on disk."""

    directory: Path
    cert_file: Path
    key_file: Path
    bundle_file: Path

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def generate(host: str) -> Certificate:
    """A self-signed certificate for ``host`` (and ``localhost``/``127.0.0.1``), valid for a week.

    It is its own CA (``CA:TRUE``): the connector builds its trust store from the bundle and
    accepts a chain that ends at a trusted certificate, which a self-signed leaf then is.
    """
    import certifi
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-cortex emulator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alternatives: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for candidate in {host, "127.0.0.1"}:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(candidate)))
        except ValueError:
            alternatives.append(x509.DNSName(candidate))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="cortex-emulator-tls-"))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file = directory / "emulator.pem"
    key_file = directory / "emulator.key"
    bundle_file = directory / "ca-bundle.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    # Whatever the process trusts today (a corporate bundle, or certifi's), plus the emulator.
    trusted = os.environ.get(CA_BUNDLE_VARIABLE) or os.environ.get("SSL_CERT_FILE") or certifi.where()
    bundle_file.write_bytes(Path(trusted).read_bytes().rstrip() + b"\n" + cert_pem)
    return Certificate(directory, cert_file, key_file, bundle_file)
