"""``fleet rollout start|status|list|pause|resume|abort|retry``: catalog rollouts for scripts.

The CLI never speaks MQTT. It checks a start as the console's page does
(:func:`fleet.console.rollout_service.desired_from`, ``policy_from``, ``choose_stations``) and
leaves it,
or a pause, resume or abort, in the console's database as a request (``rollout_requests``);
the console process holding the rollout lease applies it (:mod:`fleet.console.rollout_lease`), and
the
CLI waits for the outcome. Progress is read from the ``rollouts`` table (at most about a second
behind the driver). ``--as USER`` names the console user: starting and steering need the
``rollout`` permission (operators and admins); refusals here are audited with ``via="cli"``,
the console audits what it applied or refused.

Thresholds are percentages, as on the page (``--advance-at 90``, ``--abort-above 20``; a value
below 1 needs its ``%`` written out, so an old script's fraction ``0.9`` is refused rather than
read as 0.9 %). ``--canary N`` is a number of stations, ``--soak S`` the seconds a wave that
reached its threshold is watched before the next starts. ``status`` shows every failed station
with the terminal's reason and text; ``retry ID`` starts a new rollout over only the failed and
timed-out stations of a finished one and prints its id.

Exit status: 0 done; 1 refused (and, after ``--wait``, aborted); 2 wrong usage; 3 no console
took the request up in time (it is withdrawn), or ``--wait`` ran out of time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.cli.timefmt import local_time
from fleet.console.auth import acting_as
from fleet.console.rollout import FINAL_STATES
from fleet.console.rollout_lease import current_holder, submit, wait_done
from fleet.console.rollout_service import (
    POLICY_FLOATS,
    POLICY_INTS,
    POLICY_PERCENTS,
    RequestError,
    choose_stations,
    desired_from,
    new_rollout_id,
    policy_from,
    rollout_view,
    start_detail,
)
from fleet.console.store import RolloutRequest, RolloutRow, Store, audit

DONE, REFUSED, USAGE, NO_ANSWER = 0, 1, 2, 3
BAR_WIDTH = 30


def run(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        cmd = args.rollout_command
        if cmd == "start":
            return _start(store, args)
        if cmd == "status":
            return _status(store, args)
        if cmd == "list":
            return _list(store, args)
        return _steer(store, args)
    finally:
        store.close()


# --- reading -------------------------------------------------------------------------------------


def status_view(db: Session, rollout_id: str) -> dict[str, Any] | None:
    """A rollout as ``status`` shows it: :func:`fleet.console.rollout_service.rollout_view` with
    totals,
    or a start not applied yet (``requested``) or refused (``refused``); None if unknown."""
    row = db.get(RolloutRow, rollout_id)
    if row is not None:
        view = rollout_view(row)
    else:
        query = select(RolloutRequest).where(
            RolloutRequest.rollout_id == rollout_id, RolloutRequest.action == "start"
        )
        request = db.scalars(query.order_by(RolloutRequest.id.desc()).limit(1)).first()
        if request is None:
            return None
        refused = request.ok is False
        detail = request.detail
        view = {
            "id": rollout_id,
            "state": "refused" if refused else "requested",
            "rev": None,
            "wave": None,
            "reason": request.error or None,
            "waves": [],
            "catalog": detail.get("desired", {}).get("catalog", {}),
            "policy": detail.get("policy", {}),
            "stations": len(detail.get("stations", [])),
            "failures": [],
            "created": request.created,
            "updated": request.done_at or request.created,
            "started_by": request.actor,
            "finished": refused,
        }
    waves = view["waves"]
    total = int(view["stations"])
    applied = sum(int(w["applied"]) for w in waves)
    view |= {
        "stage": view["wave"],
        "applied": applied,
        "staged": sum(int(w.get("staged", 0)) for w in waves),
        "failed": sum(int(w["failed"]) for w in waves),
        "pending": sum(int(w["pending"]) for w in waves),
        "waiting": total - sum(int(w["targeted"]) for w in waves),
        "percent": 100 * applied // total if total else 0,
    }
    holder = current_holder(db)
    view["driver"] = holder[0] if holder else None
    return view


def state_words(view: dict[str, Any]) -> str:
    """The state, with "with N failures" when a rollout completed with some."""
    failed = int(view.get("failed") or 0)
    if view["state"] == "completed" and failed:
        return f"completed with {failed} failure{'s' if failed != 1 else ''}"
    return str(view["state"])


def _summary(view: dict[str, Any]) -> str:
    stage = f" wave {view['stage']}" if view["stage"] else ""
    staged = f", staged {view['staged']}" if view.get("staged") else ""
    line = (
        f"{state_words(view)}{stage}: applied {view['applied']}/{view['stations']} "
        f"({view['percent']}%){staged}, failed {view['failed']}, pending {view['pending']}"
    )
    return line + (f"; reason: {view['reason']}" if view.get("reason") else "")


def failure_line(failure: dict[str, Any]) -> str:
    """``site/station: failed (untrusted): no trust anchor at …`` (the terminal's text)."""
    if failure["phase"] == "timed_out":
        what = "timed out"
    else:
        what = f"failed ({failure['error']})" if failure.get("error") else "failed"
    detail = str(failure.get("detail") or "")
    return f"{failure['station']}: {what}" + (f": {detail}" if detail else "")


def _describe(view: dict[str, Any]) -> str:
    catalog = view["catalog"]
    lines = [
        f"rollout {view['id']}: {state_words(view)}"
        + (f", wave {view['stage']}" if view["stage"] else ""),
        f"catalog {catalog.get('target', '?')} version {catalog.get('version', '?')}"
        f" (sha256 {str(catalog.get('sha256', ''))[:12]}…), rev {view['rev'] or '-'},"
        f" started by {view['started_by'] or '-'}",
        f"stations {view['stations']}: applied {view['applied']}, staged {view['staged']},"
        f" failed {view['failed']}, pending {view['pending']}, waiting {view['waiting']}"
        f" ({view['percent']}% applied)",
    ]
    if view.get("retry_of"):
        lines.append(f"retries the failed stations of {view['retry_of']}")
    if view.get("retried_as"):
        lines.append(f"failed stations retried as {view['retried_as']}")
    for wave in view["waves"]:
        counts = (
            f"applied {wave['applied']}, staged {wave.get('staged', 0)}, failed {wave['failed']},"
            f" pending {wave['pending']}"
            if wave["targeted"]
            else "not started"
        )
        if wave.get("soak_until"):
            soak = time.strftime("%H:%M:%S", time.localtime(wave["soak_until"]))
            counts += f"; soaking until {soak}"
        lines.append(f"  {wave['name']:<8} {wave['size']:>5} stations  {counts}")
    if view["reason"]:
        lines.append(f"reason: {view['reason']}")
    failures = view["failures"]
    if failures:
        lines.append(f"failed stations ({len(failures)}):")
    lines += [f"  {failure_line(f)}" for f in failures[:50]]
    if len(failures) > 50:
        lines.append(f"  … {len(failures) - 50} more (--json lists them all)")
    lines.append(f"driven by {view['driver']}" if view["driver"] else "no console drives rollouts")
    return "\n".join(lines)


def draw_bar(view: dict[str, Any], width: int = BAR_WIDTH) -> str:
    """One line: ``#`` applied, ``x`` failed, ``.`` the rest; redrawn in place on a TTY."""
    total = max(int(view["stations"]), 1)
    done = width * int(view["applied"]) // total
    failed = min(width - done, -(-width * int(view["failed"]) // total))
    bar = "#" * done + "x" * failed + "." * (width - done - failed)
    stage = view["stage"] or "-"
    return (
        f"{view['state']:<9} {stage:<7} [{bar}] {view['percent']:>3}% "
        f"applied {view['applied']}/{view['stations']} failed {view['failed']} "
        f"pending {view['pending']}"
    )


def follow(
    store: Store,
    rollout_id: str,
    *,
    out: TextIO | None,
    interval_s: float = 0.5,
    timeout_s: float | None = None,
) -> dict[str, Any] | None:
    """Poll until the rollout is finished (or ``timeout_s``); show progress on ``out``: a bar
    redrawn in place on a TTY, else a line whenever something changed. The last view."""
    tty = out is not None and out.isatty()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = ""
    view: dict[str, Any] | None = None
    try:
        while True:
            with store.session() as db:
                view = status_view(db, rollout_id)
            if view is None:
                return None
            if out is not None and tty:
                out.write("\r" + draw_bar(view) + "\x1b[K")
                out.flush()
            elif out is not None and (line := _summary(view)) != last:
                print(line, file=out, flush=True)
                last = line
            if view["finished"] or (deadline is not None and time.monotonic() >= deadline):
                return view
            time.sleep(interval_s)
    finally:
        if out is not None and tty:
            out.write("\n")


def _show(view: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(view, ensure_ascii=False, indent=1) if as_json else _describe(view))


def _status(store: Store, args: argparse.Namespace) -> int:
    if args.wait:
        out = None if args.json else sys.stdout
        view = follow(
            store, args.rollout_id, out=out, interval_s=args.interval, timeout_s=args.wait_timeout
        )
    else:
        with store.session() as db:
            view = status_view(db, args.rollout_id)
    if view is None:
        print(f"fleet rollout: no rollout {args.rollout_id}", file=sys.stderr)
        return REFUSED
    _show(view, args.json)
    return _final_status(view) if args.wait else DONE


def _final_status(view: dict[str, Any]) -> int:
    if view["state"] == "completed":
        return DONE
    return REFUSED if view["finished"] else NO_ANSWER


def _list(store: Store, args: argparse.Namespace) -> int:
    limit = max(1, args.limit)
    with store.session() as db:
        ids = list(
            db.scalars(select(RolloutRow.id).order_by(RolloutRow.created.desc()).limit(limit))
        )
        waiting = select(RolloutRequest.rollout_id).where(
            RolloutRequest.action == "start", RolloutRequest.ok.is_(None)
        )
        ids = [i for i in db.scalars(waiting) if db.get(RolloutRow, i) is None] + ids
        views = [v for i in ids[:limit] if (v := status_view(db, i)) is not None]
        holder = current_holder(db)
    if args.json:
        print(json.dumps(views, ensure_ascii=False, indent=1))
        return DONE
    rows = [
        [
            v["id"],
            v["state"],
            v["stage"] or "-",
            str(v["catalog"].get("version", "-")),
            f"{v['applied']}/{v['stations']}",
            str(v["failed"]),
            f"{v['percent']}%",
            v["started_by"] or "-",
            local_time().minute(v["created"]),
        ]
        for v in views
    ]
    header = ["id", "state", "wave", "version", "applied", "failed", "%", "by", "created"]
    print(_table(rows, header) if rows else "no rollouts")
    print(f"driven by {holder[0]}" if holder else "no console drives rollouts now")
    return DONE


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    )


# --- writing -------------------------------------------------------------------------------------


def _refused(db: Session, actor: str, action: str, target: str) -> str | None:
    """Why ``actor`` may not start or steer rollouts (audited), or None if they may."""
    who, why = acting_as(db, actor)
    if who is not None and not who.may("rollout"):
        why = f"{actor} is a {who.role}; rollouts need an operator or an admin"
    elif who is not None:
        return None
    audit(db, actor, action, target, ok=False, reason=why, via="cli")
    return why


def percent_arg(value: str | None, name: str) -> str | None:
    """A threshold as typed: percent; below 1 only with its ``%`` (a fraction from before)."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith("%"):
        return text[:-1]
    try:
        number = float(text)
    except ValueError:
        return text  # policy_from says what is wrong
    if 0 < number < 1:
        flag = "--" + name.removesuffix("_pct").replace("_", "-")
        raise RequestError(
            f"{flag} is a percentage: {text} would be {text} %; write {number * 100:g} for "
            f"{number * 100:g} %, or {text}% if you mean it"
        )
    return text


def _catalog_fields(args: argparse.Namespace) -> dict[str, Any]:
    given = [args.target, args.version, args.sha256, args.length, args.metadata_url]
    if args.repo is None:
        return {
            "target": args.target,
            "version": args.version,
            "sha256": args.sha256,
            "length": args.length,
            "metadata_url": args.metadata_url,
            "targets_url": args.targets_url,
        }
    if any(v is not None for v in given):
        raise RequestError("give the catalog either with --repo or field by field, not both")
    if not args.base_url:
        raise RequestError("--repo needs --base-url, where the repository is served")
    from fleet.trust.catalog_repo import CatalogRepository, RepositoryError

    try:
        repo = CatalogRepository(args.repo)
    except RepositoryError as err:
        raise RequestError(str(err)) from err
    target = repo.targets.signed.targets.get(args.name)
    if target is None:
        raise RequestError(f"{args.name}: not in the repository; sign it first")
    base = args.base_url.rstrip("/")
    return {
        "target": args.name,
        "version": repo.latest_catalog_version(args.name),
        "sha256": target.hashes["sha256"],
        "length": target.length,
        "metadata_url": f"{base}/metadata/",
        "targets_url": args.targets_url or f"{base}/targets/",
    }


def _start(store: Store, args: argparse.Namespace) -> int:
    rollout_id = new_rollout_id()
    scope = "all" if args.all else "site" if args.site else "list"
    with store.session() as db:
        why = _refused(db, args.actor, "rollout", "")
        if why is None:
            try:
                desired = desired_from(_catalog_fields(args))
                fields = {k: getattr(args, k, None) for k in (*POLICY_INTS, *POLICY_FLOATS)} | {
                    k: percent_arg(getattr(args, k), k) for k in POLICY_PERCENTS
                }
                policy = policy_from(fields | {"canary_stations": args.canary_stations})
                keys = choose_stations(db, scope, args.site or "", list(args.stations or []))
            except RequestError as err:
                why = str(err)
                audit(db, args.actor, "rollout", "", ok=False, reason=why, via="cli")
        if why is None:
            detail = start_detail(desired, keys, policy, scope)
            request_id = submit(db, "start", rollout_id, args.actor, "cli", detail)
            driven = current_holder(db) is not None
    if why is not None:
        print(f"fleet rollout: {why}", file=sys.stderr)
        return REFUSED
    if not driven:
        print(f"no console drives rollouts now; waiting {args.timeout:g} s", file=sys.stderr)
    code = _outcome(store, request_id, args.timeout, "start")
    if code is not None:
        return code
    if args.wait:
        out = None if args.json else sys.stdout
        view = follow(
            store, rollout_id, out=out, interval_s=args.interval, timeout_s=args.wait_timeout
        )
        if view is None:
            return REFUSED
        _show(view, args.json)
        return _final_status(view)
    with store.session() as db:
        view = status_view(db, rollout_id)
    if view is None:
        return REFUSED
    if args.json:
        _show(view, True)
    else:
        print(f"rollout {rollout_id} started")
        print(_describe(view))
    return DONE


def _steer(store: Store, args: argparse.Namespace) -> int:
    action, rollout_id = args.rollout_command, args.rollout_id
    target = f"rollout/{rollout_id}"
    with store.session() as db:
        why = _refused(db, args.actor, action, target)
        row = db.get(RolloutRow, rollout_id) if why is None else None
        if why is None and row is None:
            why = f"no rollout {rollout_id}"
        elif why is None and row is not None and (row.state in FINAL_STATES) != (action == "retry"):
            why = f"cannot {action} a rollout that is {row.state}"
            audit(db, args.actor, action, target, ok=False, reason=why, via="cli")
        if why is None:
            reason = ""
            if action == "abort":
                reason = f"{args.reason.strip()[:200] or 'aborted by hand'} (by {args.actor})"
            detail: dict[str, Any] = {"reason": reason} if reason else {}
            if action == "retry":
                detail["new_id"] = new_rollout_id()
            request_id = submit(db, action, rollout_id, args.actor, "cli", detail)
    if why is not None:
        print(f"fleet rollout: {why}", file=sys.stderr)
        return REFUSED
    code = _outcome(store, request_id, args.timeout, action)
    if code is not None:
        return code
    if action == "retry":
        rollout_id = detail["new_id"]
    with store.session() as db:
        view = status_view(db, rollout_id)
    if view is None:
        return REFUSED
    if args.json:
        _show(view, True)
    elif action == "retry":
        print(f"rollout {rollout_id} retries the failed stations of {args.rollout_id}")
        print(_describe(view))
    else:
        print(f"rollout {rollout_id}: {_summary(view)}")
    return DONE


def _outcome(store: Store, request_id: int, timeout_s: float, what: str) -> int | None:
    """None if the console applied the request; else the exit status, having said why."""
    done = wait_done(store, request_id, timeout_s)
    if done is None:
        print(
            f"fleet rollout: no console took the {what} up within {timeout_s:g} s "
            "(is `fleet console` running on this database?); withdrawn",
            file=sys.stderr,
        )
        return NO_ANSWER
    if not done.ok:
        print(f"fleet rollout: refused: {done.error}", file=sys.stderr)
        return REFUSED
    return None
