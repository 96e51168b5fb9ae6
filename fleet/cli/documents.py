"""``fleet document check|withdraw|list``: printed documents, as the verification page sees them.

``check`` says what ``/v/<token>`` would say (valid, not valid, withdrawn, key revoked) with the
keys of the console's database (enrolled stations, revoked ones with their date) and
``--keys``; ``withdraw`` marks a document withdrawn by its number, audited, so that its page says
so from then on; ``list`` shows what was withdrawn. Exit status: 0 valid or done, 1 not valid or
refused.
"""

from __future__ import annotations

import argparse
import json
import sys

from fleet.console import documents
from fleet.console.store import Store


def run(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        with store.session() as db:
            if args.document_command == "check":
                found = documents.check(db, args.token, args.keys)
                claims = found.claims
                line = found.status.value
                if claims is not None:
                    line += f": {claims.doc_type} {claims.doc_id} from {found.station}"
                print(line)
                return 0 if found.valid else 1
            if args.document_command == "withdraw":
                number = documents.withdraw(db, args.doc_id, args.actor, args.reason)
                print(f"{number} withdrawn: its verification page says so from now on")
                return 0
            rows = documents.withdrawn(db, limit=10_000)
    except documents.DocumentError as err:
        print(f"fleet document {args.document_command}: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        from fleet.cli.timefmt import local_time

        when = local_time().when
        for row in rows:
            print(f"{row['doc_id']}  {when(row['at'])}  {row['by']}  {row['reason']}")
    return 0
