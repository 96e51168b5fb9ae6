"""``fleet catalog ...``: the operators' commands for the signed catalog repository.

Usage::

    fleet catalog init --repo DIR --root-keys OFFLINE_DIR [--root-key-count 3 --threshold 2]
    fleet catalog anchor --repo DIR > root.json          (install as {state}/catalogs/root.json)
    fleet catalog validate CATALOG.toml [--repo DIR] [--name catalog.toml] [--json]
    fleet catalog sign --repo DIR CATALOG.toml [--name catalog.toml]
    fleet catalog publish --repo DIR --broker HOST:PORT --password-file F --site S --station ST
                          --rev N --base-url http://repo.example/ [--name catalog.toml]
    fleet catalog rotate-key --repo DIR --root-keys OFFLINE_DIR targets|snapshot|timestamp
    fleet catalog rotate-root --repo DIR --root-keys OFFLINE_DIR --new-root-keys NEW_DIR
    fleet catalog refresh --repo DIR                     (a fresh timestamp, e.g. from cron)
    fleet catalog serve --repo DIR [--http 127.0.0.1:8081]

``validate`` and ``sign`` apply the terminals' own checks (:func:`fleet.trust.catalog_review.
check_catalog`: size, nesting, schema, text lengths) and refuse what a terminal would refuse with
one line per problem on stderr and a non-zero status (1 from validate, 2 from sign), never a
traceback. ``validate`` also warns (on stderr, exit status still 0) about what the kiosk would
show badly (:func:`flows.kioskfit.warnings`): names too long for their buttons at elder size,
matters more than 4 taps from the choose screen in elder mode.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fleet.trust.catalog_repo import (
    CatalogRepository,
    Release,
    desired_payload,
    locked,
    serve_repository,
)
from fleet.trust.catalog_review import InvalidCatalog, check_catalog, diff_catalogs
from flows.catalog import CatalogError
from flows.kioskfit import warnings as kiosk_warnings


def _release(repo: CatalogRepository, name: str) -> Release:
    target = repo.targets.signed.targets.get(name)
    if target is None:
        raise SystemExit(f"{name}: not in the repository; sign it first")
    return Release(name, repo.latest_catalog_version(name), target.hashes["sha256"], target.length)


def run(args: argparse.Namespace) -> int:
    cmd = args.catalog_command
    if cmd == "init":
        CatalogRepository.create(
            args.repo,
            args.root_keys,
            root_key_count=args.root_key_count,
            root_threshold=args.threshold,
        )
        print(f"repository created in {args.repo}; keep {args.root_keys} offline")
        return 0
    if cmd == "validate":
        return _validate(args)
    if cmd in ("sign", "rotate-key", "rotate-root", "refresh"):
        with locked(args.repo):  # the console may be signing too
            return _change(args, CatalogRepository(args.repo))
    repo = CatalogRepository(args.repo)
    if cmd == "anchor":
        sys.stdout.buffer.write(repo.trusted_root())
    elif cmd == "publish":
        return _publish(args, _release(repo, args.name))
    elif cmd == "serve":
        server = serve_repository(args.repo, *args.http)
        print(f"serving {args.repo} at {server.url}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.close()
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 if a terminal would take the catalog (what it changes is printed), 1 if not (each
    problem with its line)."""
    data = _read(args.catalog)
    try:
        parsed = check_catalog(data, source=str(args.catalog))
    except InvalidCatalog as err:
        if args.json:
            print(json.dumps({"valid": False, "problems": [p.to_dict() for p in err.problems]}))
        else:
            _refused(args, err)
        return 1
    warned = kiosk_warnings(parsed)  # valid, but the kiosk would show it badly
    for line in [] if args.json else warned:
        print(f"warning: {line}", file=sys.stderr)
    live = CatalogRepository(args.repo).live_catalog(args.name) if args.repo else None
    labels = (f"{args.name} version {live[0].version}" if live else "nothing", str(args.catalog))
    diff = diff_catalogs(live[1] if live else None, data, labels) if args.repo else None
    if args.json:
        result: dict[str, Any] = {"valid": True, "version": parsed.version}
        result["services"] = len(parsed.services)
        result["warnings"] = warned
        result["diff"] = diff.to_dict() if diff else None
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{args.catalog}: valid, version {parsed.version}, {len(parsed.services)} services")
    if diff is None:
        return 0
    print(f"against {labels[0]}:" if live else "nothing is live yet: all of it is new")
    if diff.same:
        print("  no change")
    for field in diff.station:
        print(f"  station {field.field}: {field.before or '-'} → {field.after or '-'}")
    for item in diff.items:
        mark = {"added": "+", "removed": "-"}.get(item.state, "~")
        print(f"  {mark} {item.kind} {item.code} ({item.name})")
        for field in item.fields:
            print(f"      {field.field}: {field.before or '-'} → {field.after or '-'}")
    for note in diff.notes:
        print(f"  {note}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise CatalogError(str(path), [("(file)", f"cannot be read: {err.strerror}")]) from err


def _refused(args: argparse.Namespace, err: InvalidCatalog) -> None:
    """Why a terminal would refuse the catalog: one line per problem, on stderr."""
    for problem in err.problems:
        print(
            f"fleet catalog {args.catalog_command}: {args.catalog}: {problem.text}", file=sys.stderr
        )


def _change(args: argparse.Namespace, repo: CatalogRepository) -> int:
    """The commands that write the repository (under its lock)."""
    cmd = args.catalog_command
    if cmd == "sign":
        try:  # the terminals' checks in the review's plain words, before the repository's
            check_catalog(_read(args.catalog), source=str(args.catalog))
        except InvalidCatalog as err:
            _refused(args, err)
            return 2
        release = repo.publish_catalog(args.catalog, name=args.name)
        print(json.dumps(release.desired_catalog()))
    elif cmd == "rotate-key":
        key = repo.rotate_key(args.role, args.root_keys)
        print(f"{args.role}: new key {key.keyid}; root version {repo.root.signed.version}")
    elif cmd == "rotate-root":
        keys = repo.rotate_root(
            args.root_keys, args.new_root_keys, key_count=args.key_count, threshold=args.threshold
        )
        print(f"root version {repo.root.signed.version}: {len(keys)} new keys")
    elif cmd == "refresh":
        repo.commit(["timestamp"])
    return 0


def _publish(args: argparse.Namespace, release: Release) -> int:
    from fleet.mqtt.client import CONSOLE_USER, new_client
    from fleet.protocol.topics import StationTopics, dumps

    base = args.base_url.rstrip("/")
    payload = desired_payload(args.rev, release, f"{base}/metadata/", f"{base}/targets/")
    password = args.password_file.read_text().strip()
    client = new_client(f"fleet-cli-{time.time_ns()}", username=CONSOLE_USER, password=password)
    client.connect(*args.broker)
    client.loop_start()
    try:
        topic = StationTopics(args.site, args.station).desired
        info = client.publish(topic, dumps(payload), qos=1, retain=True)
        info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()
    print(f"{topic}: {json.dumps(payload)}")
    return 0
