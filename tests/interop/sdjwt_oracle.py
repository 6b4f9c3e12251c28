#!/usr/bin/env python3
"""An interoperability oracle for SD-JWT VCs, built on the IETF reference implementation.

The Rust end-to-end tests (tests/e2e/interop.rs) run this script with the interpreter of
the virtual environment `.ci/run` makes (target/interop-venv, PyPI `sd-jwt` 0.10.4), to
check that what Civitas issues is read by the reference implementation and that what the
reference implementation presents is read by Civitas.

Subcommands (FILE may be `-` for stdin; results go to stdout):

    verify  --issuer-jwk FILE --credential FILE [--aud AUD --nonce NONCE]
        Verifies an issued SD-JWT, or a presentation, with the reference verifier and
        prints the verified claims (disclosures applied) as JSON. With --aud and --nonce a
        KB-JWT is required and checked against them.

    present --credential FILE --disclose NAME[,NAME...] --holder-jwk FILE --aud AUD --nonce NONCE
        Makes a presentation of an issued SD-JWT disclosing the named top-level claims,
        with a KB-JWT signed by the holder's private JWK, and prints it.

Exit status: 0 on success, 1 when verification or presentation fails, 2 on usage errors.
Messages go to stderr and never contain key material.

The reference implementation is an interoperability oracle, not a strictness oracle: it
does not check `exp`, `typ` or status. This script adds the checks the Civitas format
needs to be meaningful here: the issuer-signed JWT must have `typ` `dc+sd-jwt` and `alg`
`EdDSA`.
"""

import argparse
import json
import sys

import sd_jwt.verifier
from jwcrypto.jwk import JWK
from sd_jwt.holder import SDJWTHolder
from sd_jwt.verifier import SDJWTVerifier

#: The media type of an SD-JWT VC's issuer-signed JWT (SD-JWT VC, draft 09 and later).
CREDENTIAL_TYP = "dc+sd-jwt"
#: The only signing algorithm Civitas uses, for both the issuer JWT and the KB-JWT.
SIGNING_ALG = "EdDSA"

# The reference verifier checks KB-JWTs with a module-level default algorithm (ES256).
sd_jwt.verifier.DEFAULT_SIGNING_ALG = SIGNING_ALG


class OracleError(Exception):
    """A check failed; the message says which."""


def read_text(path):
    """The stripped text of PATH, or of stdin when PATH is `-`."""
    if path == "-":
        return sys.stdin.read().strip()
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def read_jwk(path, private):
    """An OKP Ed25519 JWK from PATH; with PRIVATE, it must hold the private key `d`."""
    text = read_text(path)
    try:
        jwk = JWK.from_json(text)
    except Exception as e:  # jwcrypto raises several types for malformed keys
        raise OracleError(f"{path}: not a usable JWK ({type(e).__name__})") from None
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise OracleError(f"{path}: expected an OKP Ed25519 JWK")
    if private and not jwk.has_private:
        raise OracleError(f"{path}: expected a private JWK (with d)")
    return jwk


def issuer_key_for(issuer_jwk):
    """The reference verifier's issuer key callback: checks the issuer JWT's header, then
    answers with the one key it was given (the test resolved it from the registry)."""

    def callback(_iss, header):
        if header.get("typ") != CREDENTIAL_TYP:
            raise OracleError(
                f"expected issuer JWT typ {CREDENTIAL_TYP!r}, found {header.get('typ')!r}"
            )
        if header.get("alg") != SIGNING_ALG:
            raise OracleError(
                f"expected issuer JWT alg {SIGNING_ALG!r}, found {header.get('alg')!r}"
            )
        return issuer_jwk

    return callback


def verify(args):
    """`verify`: print the claims of a verified SD-JWT or presentation."""
    if (args.aud is None) != (args.nonce is None):
        raise OracleError("--aud and --nonce go together")
    issuer_jwk = read_jwk(args.issuer_jwk, private=False)
    verifier = SDJWTVerifier(
        read_text(args.credential),
        issuer_key_for(issuer_jwk),
        expected_aud=args.aud,
        expected_nonce=args.nonce,
    )
    claims = verifier.get_verified_payload()
    json.dump(claims, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


def present(args):
    """`present`: print a presentation of the named claims, with a KB-JWT."""
    names = [n.strip() for n in args.disclose.split(",") if n.strip()]
    if not names:
        raise OracleError("--disclose names no claim")
    holder_jwk = read_jwk(args.holder_jwk, private=True)
    holder = SDJWTHolder(read_text(args.credential))
    holder.create_presentation(
        {name: True for name in names},
        nonce=args.nonce,
        aud=args.aud,
        holder_key=holder_jwk,
        sign_alg=SIGNING_ALG,
    )
    # The reference implementation silently skips names it has no disclosure for; an
    # oracle that did too would let a test pass without disclosing anything.
    disclosed = set()
    for disclosure in holder.hs_disclosures:
        decoded = json.loads(SDJWTHolder._base64url_decode(disclosure))
        if len(decoded) == 3:
            disclosed.add(decoded[1])
    missing = [n for n in names if n not in disclosed]
    if missing:
        raise OracleError(f"the credential has no top-level disclosure for {', '.join(missing)}")
    if not holder.serialized_key_binding_jwt:
        raise OracleError("the reference implementation made no KB-JWT")
    sys.stdout.write(holder.sd_jwt_presentation + "\n")


def parser():
    """The command line."""
    p = argparse.ArgumentParser(
        prog="sdjwt_oracle",
        description="Verify and present SD-JWT VCs with the IETF reference implementation.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="verify an issued SD-JWT or a presentation")
    v.add_argument("--issuer-jwk", required=True, metavar="FILE", help="the issuer's public JWK")
    v.add_argument("--credential", required=True, metavar="FILE", help="the SD-JWT (- for stdin)")
    v.add_argument("--aud", help="the KB-JWT's expected audience (requires --nonce)")
    v.add_argument("--nonce", help="the KB-JWT's expected nonce (requires --aud)")
    v.set_defaults(run=verify)

    r = sub.add_parser("present", help="make a presentation with a KB-JWT")
    r.add_argument(
        "--credential", required=True, metavar="FILE", help="the issued SD-JWT (- for stdin)"
    )
    r.add_argument(
        "--disclose", required=True, metavar="NAMES", help="top-level claim names, comma-separated"
    )
    r.add_argument(
        "--holder-jwk", required=True, metavar="FILE", help="the holder's private JWK (with d)"
    )
    r.add_argument("--aud", required=True, help="the KB-JWT's audience")
    r.add_argument("--nonce", required=True, help="the KB-JWT's nonce")
    r.set_defaults(run=present)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (OracleError, OSError) as e:
        print(f"sdjwt_oracle {args.command}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the reference implementation and jwcrypto raise many types
        print(f"sdjwt_oracle {args.command}: refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
