#!/usr/bin/env python3
"""An interoperability oracle for RFC 9421 request signatures, built on an independent
implementation (PyPI `http-message-signatures` 3.0.0).

The Rust end-to-end tests (tests/e2e/gateway_interop.rs) run this script with the
interpreter of the virtual environment `.ci/run` makes (target/interop-venv) to sign a
request under the Civitas profile with a library that shares no code with Civitas, and
send it to the verifier gateway.

    sign --private-jwk FILE --key-id DIDURL --method METHOD --url URL
         [--header 'name: value']... --nonce NONCE --tag TAG [--created UNIX]

Prints a JSON object of the headers to send (the given ones, content-digest,
signature-input, signature). Exit status: 0 on success, 1 when signing fails, 2 on usage
errors. Messages go to stderr and never contain key material.
"""

import argparse
import base64
import datetime
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms


class Message:
    """The message interface the library reads: method, url, headers."""

    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        self.headers = headers


class OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id, key):
        self.key_id = key_id
        self.key = key

    def resolve_private_key(self, key_id):
        if key_id != self.key_id:
            raise KeyError("unknown key id")
        return self.key

    def resolve_public_key(self, key_id):
        return self.key.public_key()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sign = sub.add_parser("sign")
    sign.add_argument("--private-jwk", required=True)
    sign.add_argument("--key-id", required=True)
    sign.add_argument("--method", required=True)
    sign.add_argument("--url", required=True)
    sign.add_argument("--header", action="append", default=[])
    sign.add_argument("--nonce", required=True)
    sign.add_argument("--tag", required=True)
    sign.add_argument("--created", type=int)
    args = parser.parse_args()

    with open(args.private_jwk, encoding="utf-8") as f:
        jwk = json.load(f)
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "d" not in jwk:
        print("expected a private OKP Ed25519 JWK", file=sys.stderr)
        return 2
    key = Ed25519PrivateKey.from_private_bytes(b64url_decode(jwk["d"]))

    headers = {}
    covered = ["@method", "@target-uri"]
    for line in args.header:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers[name] = value.strip()
        covered.append(name)
    message = Message(args.method, args.url, headers)
    created = (
        datetime.datetime.fromtimestamp(args.created, tz=datetime.timezone.utc)
        if args.created is not None
        else datetime.datetime.now(tz=datetime.timezone.utc)
    )
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519, key_resolver=OneKey(args.key_id, key)
    )
    try:
        signer.sign(
            message,
            key_id=args.key_id,
            created=created,
            nonce=args.nonce,
            label="interop",
            tag=args.tag,
            covered_component_ids=covered,
            body=b"",
        )
    except Exception as e:  # noqa: BLE001 - report any library failure as exit 1
        print(f"signing failed: {e}", file=sys.stderr)
        return 1
    json.dump(dict(message.headers), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
