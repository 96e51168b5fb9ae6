"""``fleet``: the centre's command line (``console`` for now; more with the console issue)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def verify_token(token: str, key_files: list[Path], folder: Path | None) -> int:
    """Print valid / forged / unknown key; exit 0, 1 or 2 accordingly."""
    from flows.tokens import Verdict, key_id, load_public, verify

    files = list(key_files) + (sorted(folder.glob("*.pub")) if folder else [])
    keys = {}
    for path in files:
        public = load_public(path.read_bytes())
        keys[key_id(public)] = public
    verdict, claims = verify(token, keys)
    if verdict is Verdict.VALID and claims is not None:
        issued = dt.datetime.fromtimestamp(claims.issued, tz=dt.UTC)
        print(f"valid: {claims.doc_type} {claims.doc_id}, issued {issued:%Y-%m-%d %H:%M} UTC")
        return 0
    print(verdict.value)
    return 1 if verdict is Verdict.FORGED else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet", description="Station kiosk fleet (centre side)")
    sub = parser.add_subparsers(dest="command", required=True)
    console = sub.add_parser("console", help="run the web console")
    console.add_argument("--broker", type=_hostport, required=True, help="MQTT broker HOST:PORT")
    console.add_argument(
        "--http",
        type=_hostport,
        default=("127.0.0.1", 8080),
        help="where to serve the web console (HOST:PORT)",
    )
    console.add_argument(
        "--password-file", type=Path, help="file holding the console's MQTT password"
    )
    verify = sub.add_parser("verify", help="check a certificate's QR token offline")
    verify.add_argument("token")
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        help="a station's document-signing public key (PEM); repeat for several",
    )
    verify.add_argument("--keys", type=Path, help="a folder of *.pub station keys")
    from fleet import catalog_cli

    catalog_cli.add_parser(sub)  # fleet catalog init/sign/publish/rotate-key/...
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "catalog":
        from fleet import catalog_cli

        return catalog_cli.run(args)
    if args.command == "verify":
        return verify_token(args.token, args.key, args.keys)
    if args.command == "console":
        from fleet.console import Console

        password = args.password_file.read_text().strip() if args.password_file else ""
        host, port = args.broker
        return Console(host, port, password=password).serve(*args.http)
    return 2


if __name__ == "__main__":
    sys.exit(main())
