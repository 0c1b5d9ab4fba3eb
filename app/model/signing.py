"""Signed model versions: Ed25519 over the exact bytes of a version's metadata.json.

The metadata records the sha256 of the model file, so a valid signature over it vouches for
both files, and it is checked before the model file is read: an unsigned or wrongly signed
version is refused before any byte of it is deserialized. Whoever publishes holds the private
key (``SIGNING_KEY_FILE`` for train.py and manage.py import); the server holds only public keys
(``VERIFY_KEYS_FILE``, one or more PEM blocks), so a compromised server cannot mint models, and
trusting the old and the new public key at once rotates keys without downtime.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

SIGNATURE_FILE = "signature.json"
ALGORITHM = "ed25519"
PEM_BLOCK = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


class SigningError(Exception):
    """A key that cannot be read or made; the message names the file."""


class SignatureInvalid(Exception):
    """A version whose signature is missing, malformed, from an untrusted key, or wrong."""


def key_id(public_key) -> str:
    """A short, stable name for a public key (sha256 of its raw bytes), to say which key signed."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(private_path: Path | str, public_path: Path | str) -> str:
    """Write a new Ed25519 key pair (the private key readable by its owner only); return its id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise SigningError(f"{path} exists; choose another file (a key is never overwritten)")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(private)
        public_path.write_bytes(public)
    except OSError as exc:
        raise SigningError(f"cannot write the key pair: {exc.strerror or exc}: {exc.filename or ''}") from None
    return key_id(key.public_key())


def load_private_key(path: Path | str):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise SigningError(f"SIGNING_KEY_FILE {path} cannot be read ({exc.strerror or exc})") from None
    except (ValueError, TypeError) as exc:
        raise SigningError(f"SIGNING_KEY_FILE {path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"SIGNING_KEY_FILE {path} is not an Ed25519 key; make one with: python manage.py keygen")
    return key


def load_public_keys(path: Path | str) -> dict[str, Any]:
    """Every public key in the file, by key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(f"VERIFY_KEYS_FILE {path} cannot be read ({exc.strerror or exc})") from None
    keys = {}
    for block in PEM_BLOCK.findall(data):
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise SigningError(f"VERIFY_KEYS_FILE {path} holds a key that cannot be read ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningError(f"VERIFY_KEYS_FILE {path} holds a key that is not Ed25519")
        keys[key_id(key)] = key
    if not keys:
        raise SigningError(f"VERIFY_KEYS_FILE {path} holds no PEM public key")
    return keys


def sign(private_key, metadata_bytes: bytes) -> bytes:
    """The signature file's bytes for a version's metadata.json."""
    signature = private_key.sign(metadata_bytes)
    record = {"algorithm": ALGORITHM, "key_id": key_id(private_key.public_key()), "signed_file": "metadata.json",
              "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(record, indent=2) + "\n").encode()


def verify(signature_bytes: bytes | None, metadata_bytes: bytes, keys: dict[str, Any]) -> str:
    """The id of the trusted key that signed these metadata bytes; SignatureInvalid otherwise."""
    from cryptography.exceptions import InvalidSignature

    if signature_bytes is None:
        raise SignatureInvalid(f"it is not signed ({SIGNATURE_FILE} is missing) and VERIFY_KEYS_FILE is set")
    try:
        record = json.loads(signature_bytes)
        signature = base64.b64decode(record["signature"], validate=True)
        signer = record["key_id"]
    except (ValueError, KeyError, TypeError):
        raise SignatureInvalid(f"its {SIGNATURE_FILE} is malformed") from None
    if record.get("algorithm") != ALGORITHM:
        raise SignatureInvalid(f"its signature uses {record.get('algorithm')!r}, not {ALGORITHM}")
    key = keys.get(signer)
    if key is None:
        raise SignatureInvalid(f"it is signed by key {str(signer)[:16]}, which VERIFY_KEYS_FILE does not trust "
                               f"(trusted: {', '.join(sorted(keys))})")
    try:
        key.verify(signature, metadata_bytes)
    except InvalidSignature:
        raise SignatureInvalid(f"its signature does not match its metadata (key {signer}): the files were changed "
                               "after signing, or the signature was forged") from None
    return signer
