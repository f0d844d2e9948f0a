"""Print an argon2id hash for a staff password: ``python -m server.staff.hashpw``.

Asks for the password twice without echo (or reads one line from stdin when
it is not a terminal), then prints the TOML line to paste under
``[staff.users.<name>]``.
"""

from __future__ import annotations

import getpass
import sys

from argon2 import PasswordHasher

MIN_LENGTH = 10


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("The two passwords differ; nothing printed.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        print(f"Use at least {MIN_LENGTH} characters.", file=sys.stderr)
        return 1
    print(f'password_hash = "{PasswordHasher().hash(password)}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
