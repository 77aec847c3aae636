"""Ed25519 keys of the audit trail: create, load, fingerprint, sign and check signatures.

Keys are PEM files: the private key as unencrypted PKCS#8 (created with mode 0600, never
overwritten), the public key as SubjectPublicKeyInfo. A signature is Ed25519 over the 64 ASCII
bytes of a record's hex hash, carried as standard base64 (88 characters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import pathlib

from cryptography import exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent_authority.audit import errors

PublicKey = ed25519.Ed25519PublicKey
KEY_ID_LENGTH = 16
RAW_PUBLIC_KEY_LENGTH = 32
PRIVATE_KEY_MODE = 0o600
PUBLIC_KEY_MODE = 0o644


def generate_private_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the 32 raw bytes of the public key."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:KEY_ID_LENGTH]


def raw_public_key(public_key: ed25519.Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (what a key hand-over record carries, base64)."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_base64(text: str) -> ed25519.Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes; ``SigningKeyError`` if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise errors.SigningKeyError(f"not base64: {e}") from e
    if len(raw) != RAW_PUBLIC_KEY_LENGTH:
        raise errors.SigningKeyError(f"{len(raw)} bytes, an Ed25519 public key has 32")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def sign(private_key: ed25519.Ed25519PrivateKey, digest: str) -> str:
    """Sign a hex digest; return the signature as base64."""
    signature = private_key.sign(digest.encode("ascii"))
    return base64.b64encode(signature).decode("ascii")


def signature_valid(public_key: ed25519.Ed25519PublicKey, digest: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s signature of ``digest``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, digest.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, exceptions.InvalidSignature):
        return False
    return True


class Signer:
    """A private key with its public half and key id: what a chain needs to seal records."""

    def __init__(self, private_key: ed25519.Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, digest: str) -> str:
        return sign(self._private_key, digest)


def write_private_key(private_key: ed25519.Ed25519PrivateKey, path: pathlib.Path) -> None:
    """Write a new private key file with mode 0600; refuse to overwrite an existing file."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_KEY_MODE)
    except FileExistsError as e:
        raise errors.SigningKeyError(
            f"refusing to overwrite the audit signing key {path}: it already exists"
        ) from e
    except OSError as e:
        raise errors.SigningKeyError(f"cannot create audit signing key {path}: {e}") from e
    try:
        os.fchmod(fd, PRIVATE_KEY_MODE)  # a umask can only remove bits; make the mode exact
        _write_all(fd, pem)
        os.fsync(fd)
    except OSError as e:
        raise errors.SigningKeyError(f"cannot write audit signing key {path}: {e}") from e
    finally:
        os.close(fd)


def write_public_key(public_key: ed25519.Ed25519PublicKey, path: pathlib.Path) -> None:
    """Write (or replace) a public key file, for verifiers."""
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PUBLIC_KEY_MODE)
        try:
            _write_all(fd, pem)
        finally:
            os.close(fd)
    except OSError as e:
        raise errors.SigningKeyError(f"cannot write audit public key {path}: {e}") from e


def load_private_key(path: pathlib.Path) -> ed25519.Ed25519PrivateKey:
    pem = _read(path, "audit signing key")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as e:
        raise errors.SigningKeyError(
            f"audit signing key {path} is encrypted; the operator needs it unencrypted "
            "(protect it with file permissions or a Kubernetes Secret instead)"
        ) from e
    except (ValueError, exceptions.UnsupportedAlgorithm) as e:
        raise errors.SigningKeyError(f"{path} is not a PEM private key: {e}") from e
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise errors.SigningKeyError(
            f"{path} holds a {type(key).__name__}; the audit trail signs with Ed25519 only"
        )
    return key


def load_public_key(path: pathlib.Path) -> ed25519.Ed25519PublicKey:
    pem = _read(path, "audit public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, exceptions.UnsupportedAlgorithm) as e:
        raise errors.SigningKeyError(f"{path} is not a PEM public key: {e}") from e
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise errors.SigningKeyError(
            f"{path} holds a {type(key).__name__}; the audit trail verifies Ed25519 only"
        )
    return key


def load_or_create_private_key(path: pathlib.Path) -> ed25519.Ed25519PrivateKey:
    """Load the key at ``path``, or create it (mode 0600) if no file is there."""
    if not path.exists():
        key = generate_private_key()
        try:
            write_private_key(key, path)
        except errors.SigningKeyError:
            if not path.exists():
                raise
            # Another process created it between our check and our write: use theirs.
        else:
            return key
    return load_private_key(path)


def _read(path: pathlib.Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise errors.SigningKeyError(f"cannot read {what} {path}: {e}") from e


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
