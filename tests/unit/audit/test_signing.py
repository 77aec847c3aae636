from __future__ import annotations

import base64
import hashlib
import pathlib
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from agent_authority.audit import errors, signing

SEED = bytes(range(32))
DIGEST = hashlib.sha256(b"record").hexdigest()


def fixed_key(seed: bytes = SEED) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def mode_of(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_id_is_the_first_16_hex_digits_of_sha256_of_the_raw_public_key() -> None:
    public_key = fixed_key().public_key()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    assert signing.key_id(public_key) == hashlib.sha256(raw).hexdigest()[:16]
    assert signing.key_id(fixed_key(bytes(32)).public_key()) != signing.key_id(public_key)


def test_signer_carries_its_public_key_and_key_id() -> None:
    signer = signing.Signer(fixed_key())

    assert signer.key_id == signing.key_id(fixed_key().public_key())
    assert signing.signature_valid(signer.public_key, DIGEST, signer.sign(DIGEST))


def test_a_signature_is_base64_of_64_bytes_and_deterministic() -> None:
    signature = signing.sign(fixed_key(), DIGEST)

    assert len(base64.b64decode(signature, validate=True)) == 64
    assert len(signature) == 88
    assert signing.sign(fixed_key(), DIGEST) == signature


@pytest.mark.parametrize(
    ("public_key", "digest", "signature"),
    [
        pytest.param(
            fixed_key(bytes(32)).public_key(),
            DIGEST,
            signing.sign(fixed_key(), DIGEST),
            id="another key's public half",
        ),
        pytest.param(
            fixed_key().public_key(),
            "0" * 64,
            signing.sign(fixed_key(), DIGEST),
            id="a different digest",
        ),
        pytest.param(
            fixed_key().public_key(), DIGEST, "not base64!", id="a signature that is not base64"
        ),
        pytest.param(
            fixed_key().public_key(),
            DIGEST,
            base64.b64encode(b"short").decode(),
            id="a signature of the wrong length",
        ),
        pytest.param(
            fixed_key().public_key(),
            "é" * 64,
            signing.sign(fixed_key(), DIGEST),
            id="a digest that is not ASCII",
        ),
    ],
)
def test_signature_valid_is_false_for(
    public_key: ed25519.Ed25519PublicKey, digest: str, signature: str
) -> None:
    assert not signing.signature_valid(public_key, digest, signature)


def test_private_key_file_is_created_0600_and_loads_back(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.key"

    signing.write_private_key(fixed_key(), path)

    assert mode_of(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = signing.load_private_key(path)
    assert signing.key_id(loaded.public_key()) == signing.key_id(fixed_key().public_key())


def test_private_key_file_is_never_overwritten(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.key"
    signing.write_private_key(fixed_key(), path)
    before = path.read_bytes()

    with pytest.raises(errors.SigningKeyError, match="refusing to overwrite"):
        signing.write_private_key(fixed_key(bytes(32)), path)

    assert path.read_bytes() == before


def test_public_key_file_round_trips(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.pub"

    signing.write_public_key(fixed_key().public_key(), path)

    assert mode_of(path) == 0o644
    assert signing.key_id(signing.load_public_key(path)) == signing.key_id(fixed_key().public_key())


def test_load_or_create_creates_once_then_loads_the_same_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.key"

    created = signing.load_or_create_private_key(path)
    loaded = signing.load_or_create_private_key(path)

    assert mode_of(path) == 0o600
    assert signing.key_id(created.public_key()) == signing.key_id(loaded.public_key())


def _ec_private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _encrypted_pem() -> bytes:
    return fixed_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="missing file"),
        pytest.param(b"hello", "not a PEM private key", id="not PEM"),
        pytest.param(_ec_private_pem(), "Ed25519 only", id="an EC key"),
        pytest.param(_encrypted_pem(), "is encrypted", id="an encrypted key"),
    ],
)
def test_load_private_key_refuses(
    tmp_path: pathlib.Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "audit.key"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(errors.SigningKeyError, match=message):
        signing.load_private_key(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read", id="missing file"),
        pytest.param(b"hello", "not a PEM public key", id="not PEM"),
        pytest.param(
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "Ed25519 only",
            id="an EC public key",
        ),
        pytest.param(_ec_private_pem(), "not a PEM public key", id="a private key"),
    ],
)
def test_load_public_key_refuses(
    tmp_path: pathlib.Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "audit.pub"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(errors.SigningKeyError, match=message):
        signing.load_public_key(path)
