"""Verification tokens for printed certificates: compact, signed, checkable offline.

A token names the document type and id, the issue time and a hash of the content, signed with
the station's Ed25519 document key. It travels in the certificate's QR code as
``KD1.<payload>.<signature>.<key id>`` (base64url without padding; the payload is compact JSON).
Anyone holding the station's public key can check it without asking anyone: ``fleet verify``.
The key id is the first 16 hex digits of the SHA-256 of the raw public key.

A deployment with a public verification page prints the token inside a URL,
``https://VERIFY-HOST/v/<token>`` (:func:`verify_url`), so that a phone's camera opens the page; the
token in it is the whole proof, and :func:`token_of` takes it back out, so that the URL verifies
offline as the bare token does. The payload names, besides type, number, time and hash, the
document's title and the agency that issued it (both optional: a four-field token from before
verifies too), so that the page can say what the paper is without the console knowing catalogs.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "KD1"
VERIFY_PATH = "/v/"  # the verification page's path; the token follows it
SIGNED_FIELDS = ("doc_type", "doc_id", "issued", "content_hash", "title", "issuer")
"""What a token's signature covers, in the payload's order; the content hash stands for the
record's title, fields (name and ID number among them) and table, which it hashes."""
_BASE_URL = re.compile(
    r"^https://[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*$"
)


class Verdict(enum.StrEnum):
    VALID = "valid"
    FORGED = "forged"  # malformed, altered, or signed by someone else
    UNKNOWN_KEY = "unknown key"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    doc_type: str
    doc_id: str
    issued: int  # unix seconds
    content_hash: str  # hex SHA-256 of the document's content, first 32 digits
    title: str = ""  # the document's title as printed (Chinese), e.g. 社会保险参保证明
    issuer: str = ""  # the agency it is issued by (出具单位), else the printing station


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Decode, accepting only the one canonical form: base64 leaves unused bits in a segment's
    last character, so a changed last character could otherwise decode to the same bytes and a
    token have several printed forms that all verify."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def content_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:32]


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """Signs tokens with one station's document key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """The station's key, created on first use (0600); its public half beside it (.pub)."""
        if path.exists():
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 key")
            return cls(private)
        path.parent.mkdir(parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(path)
        signer = cls(private)
        path.with_suffix(".pub").write_bytes(public_pem(signer.public))
        return signer

    def sign(self, claims: TokenClaims) -> str:
        fields: list[str | int] = [claims.doc_type, claims.doc_id, claims.issued]
        fields.append(claims.content_hash)
        if claims.title or claims.issuer:
            fields += [claims.title, claims.issuer]
        payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        signature = self._private.sign(payload)
        return f"{PREFIX}.{_b64(payload)}.{_b64(signature)}.{self.key_id}"


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def valid_base_url(url: str) -> bool:
    """Is ``url`` a verification site's base (``https://host[:port][/path]``, no query, no
    trailing slash)? Only https: a phone must not open a paper's page in the clear."""
    return bool(_BASE_URL.match(url))


def verify_url(base: str, token: str) -> str:
    """The URL a certificate's QR code carries: ``{base}/v/{token}``."""
    if not valid_base_url(base):
        raise ValueError(f"{base!r} is not an https:// base URL")
    return f"{base}{VERIFY_PATH}{token}"


def token_of(text: str) -> str:
    """The token in what a QR code says: the token itself, or a verification URL holding it."""
    text = text.strip()
    if text.startswith(("https://", "http://")):
        path = urlsplit(text).path
        _, sep, token = path.rpartition(VERIFY_PATH)
        return token if sep else ""
    return text


def verify(token: str, keys: dict[str, Ed25519PublicKey]) -> tuple[Verdict, TokenClaims | None]:
    """Check a token (or a verification URL holding one) against known station keys (key id →
    public key)."""
    parts = token_of(token).split(".")
    if len(parts) != 4 or parts[0] != PREFIX:
        return Verdict.FORGED, None
    _, payload_b64, signature_b64, kid = parts
    public = keys.get(kid)
    if public is None:
        return Verdict.UNKNOWN_KEY, None
    try:
        payload = _unb64(payload_b64)
        public.verify(_unb64(signature_b64), payload)
        fields = json.loads(payload)
        if not isinstance(fields, list) or len(fields) not in (4, 6):
            raise ValueError("a token's payload has 4 or 6 fields")
        doc_type, doc_id, issued, digest, *named = fields
        title, issuer = named or ("", "")
        if not isinstance(issued, int):
            raise TypeError("the time of issue is a whole number")
        claims = TokenClaims(
            str(doc_type), str(doc_id), issued, str(digest), str(title), str(issuer)
        )
    except (InvalidSignature, ValueError, TypeError):
        return Verdict.FORGED, None
    return Verdict.VALID, claims
