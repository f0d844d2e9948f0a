"""Secrets a person may type or paste on a command line: the hub's MQTT password, device and API tokens.

``secrets.token_urlsafe`` draws from ``A-Z a-z 0-9 - _``, so about one in 64 begins with ``-``, and
``vuoro doctor --mqtt-password -tec…`` (or any argparse/getopt tool) reads such a value as an option
(CI found one, 2026-12-01). Drawing again until the first character is not ``-`` keeps the secret
uniform over every URL-safe string that does not begin with one, and costs the 1/64 case one more draw.

``vuoro secret`` prints one, for a device's ``token`` in the site config.
"""

from __future__ import annotations

import argparse
import secrets


def new_secret(nbytes: int = 24) -> str:
    """A URL-safe random secret of ``nbytes`` random bytes (``4/3 * nbytes`` characters) not starting with ``-``."""
    while True:
        secret = secrets.token_urlsafe(nbytes)
        if not secret.startswith("-"):
            return secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vuoro secret",
                                     description="Print a new random secret (a device's token, a password) that is "
                                                 "safe to paste on a command line.")
    parser.add_argument("--bytes", type=int, default=24, help="random bytes in it (default 24: 32 characters)")
    args = parser.parse_args(argv)
    if args.bytes < 16:
        parser.error("--bytes: at least 16, a shorter secret can be guessed")
    print(new_secret(args.bytes))
    return 0
