"""Vendors whose proof is one HMAC of the body in one header (no timestamp): Intercom, Help Scout, GitHub,
Typeform, Delighted. Pure."""

from __future__ import annotations

from ingest.domain.connectors.base import Delivery, VerificationFailed, b64, hmac_digest, require_signature

__all__ = ["verify_body_hmac"]


def verify_body_hmac(
    delivery: Delivery, secret: str, *, header: str, algorithm: str, encoding: str, prefix: str = ""
) -> None:
    """``header`` must be ``prefix`` + hex/base64 HMAC-``algorithm`` of the raw body under ``secret``."""
    digest = hmac_digest(secret, delivery.body, algorithm)
    expected = prefix + (digest.hex() if encoding == "hex" else b64(digest))
    given = delivery.header(header)
    if given is not None and prefix and not given.strip().startswith(prefix):
        raise VerificationFailed("signature", f"The `{header}` header must start with `{prefix}`.")
    require_signature(expected, given, header)
