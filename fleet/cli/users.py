"""``fleet user``: the console's users from the command line, in its own database.

::

    fleet user add NAME --role technician|operator|admin [--password-file FILE] [--db URL]
    fleet user list [--json] [--db URL]
    fleet user disable NAME [--db URL]
    fleet user enable NAME [--db URL]
    fleet user set-password NAME [--password-file FILE] [--db URL]

A password comes from ``--password-file`` (the file's text, stripped) or, without it, is asked
for twice on the terminal with no echo; it is never printed, nor is its hash (``list`` shows name,
role, state and when the user was made). Disabling a user, or setting their password, ends their
open sessions; the last enabled admin is not disabled (the users page and the keys need one).
Every change lands in the audit log as ``cli``, like the users page's own. The old ``fleet user
--name N ...`` still adds, for one release (:mod:`fleet.cli.legacy`).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fleet.console import auth
from fleet.console.store import Store, User, WebSession, audit

ACTOR = "cli"


class Usage(Exception):
    pass


class Refused(Exception):
    pass


def read_password(args: argparse.Namespace) -> str:
    """From ``--password-file``, else asked for twice without echo (never from a pipe)."""
    if args.password_file is not None:
        return str(args.password_file.read_text().strip())
    if not sys.stdin.isatty():
        raise Usage("no terminal to ask for the password on: give --password-file FILE")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("the same again: ") != first:
        raise Usage("the two passwords differ; nothing changed")
    return first


def _user(db: Session, name: str) -> User:
    user = db.scalar(select(User).where(User.name == name))
    if user is None:
        raise Refused(f"no console user {name!r}")
    return user


def _end_sessions(db: Session, user: User) -> None:
    db.execute(delete(WebSession).where(WebSession.user_id == user.id))


def _add(db: Session, args: argparse.Namespace, password: str) -> str:
    auth.create_user(db, args.name, password, args.role)
    audit(db, ACTOR, "create_user", f"user/{args.name}", role=args.role)
    return f"user {args.name} ({args.role}) added"


def _disable(db: Session, args: argparse.Namespace) -> str:
    user = _user(db, args.name)
    if user.disabled:
        return f"user {user.name} was disabled already"
    if user.role == "admin":
        admins = db.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.disabled.is_(False))
        )
        if (admins or 0) <= 1:
            raise Refused(f"{user.name} is the last enabled admin: add or enable another first")
    user.disabled = True
    _end_sessions(db, user)
    audit(db, ACTOR, "disable_user", f"user/{user.name}")
    return f"user {user.name} disabled: they can no longer log in"


def _enable(db: Session, args: argparse.Namespace) -> str:
    user = _user(db, args.name)
    if not user.disabled:
        return f"user {user.name} was enabled already"
    user.disabled = False
    audit(db, ACTOR, "enable_user", f"user/{user.name}")
    return f"user {user.name} enabled"


def _set_password(db: Session, args: argparse.Namespace, password: str) -> str:
    user = _user(db, args.name)
    user.password_hash = auth.hash_password(password)
    _end_sessions(db, user)
    audit(db, ACTOR, "set_password", f"user/{user.name}")
    return f"password of {user.name} set; their open sessions ended"


def listing(db: Session) -> list[dict[str, Any]]:
    """Every user as ``list`` shows them: never the password hash."""
    return [
        {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at}
        for u in db.scalars(select(User).order_by(User.name))
    ]


def _table(users: list[dict[str, Any]]) -> str:
    if not users:
        return "no console users"
    from fleet.cli.timefmt import local_time

    local = local_time()
    width = max(len("name"), *(len(u["name"]) for u in users))
    lines = [f"{'name'.ljust(width)}  {'role':<10}  {'state':<8}  created"]
    for u in users:
        state = "disabled" if u["disabled"] else "enabled"
        created = local.minute(u["created_at"])
        lines.append(f"{u['name'].ljust(width)}  {u['role']:<10}  {state:<8}  {created}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    verb = args.user_command
    store = Store(args.db)
    try:
        # the password is asked for before the database is touched, and never kept beyond this
        password = read_password(args) if verb in ("add", "set-password") else ""
        store.migrate()
        with store.session() as db:
            if verb == "list":
                users = listing(db)
                said = json.dumps(users, ensure_ascii=False, indent=1) if args.json else ""
                said = said or _table(users)
            elif verb == "add":
                said = _add(db, args, password)
            elif verb == "set-password":
                said = _set_password(db, args, password)
            elif verb == "disable":
                said = _disable(db, args)
            else:
                said = _enable(db, args)
    except Usage as err:
        print(f"fleet user {verb}: {err}", file=sys.stderr)
        return 2
    except (Refused, auth.AuthError, OSError) as err:
        print(f"fleet user {verb}: {err}", file=sys.stderr)
        return 1
    except SQLAlchemyError as err:
        print(f"fleet user {verb}: the console database: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(said)
    return 0
