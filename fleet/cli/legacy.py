"""The ``fleet`` command lines of before the one verb style, still understood for one release.

``fleet enroll``, ``fleet alerts`` and ``fleet user`` took mode flags (``enroll --revoke SITE
STATION``, ``alerts --ack ID``) or no verb at all (``enroll SITE STATION``, ``alerts``, ``user
--name N``); they now take verbs like ``rollout`` and ``catalog`` (docs/decisions.md, "Fleet CLI:
one verb style"). :func:`translate` rewrites an old command line into the new one and says so in
one line, which :func:`fleet.cli.main` prints on stderr; the parser itself knows only the verbs, so
``--help`` shows only them. The old forms cannot be hidden options of the new parsers: argparse
takes the ``SITE`` of ``enroll --revoke SITE STATION`` for a verb and refuses it.

Nothing here imports more than the standard library: it runs before every command.
"""

from __future__ import annotations

VERBS = {
    "enroll": ("add", "revoke", "crl", "list", "set-doc-key"),
    "alerts": ("list", "ack"),
    "user": ("add", "list", "disable", "enable", "set-password"),
}
ENROLL_FLAGS = {
    "--revoke": "revoke",
    "--set-doc-key": "set-doc-key",
    "--write-crl": "crl",
    "--list": "list",
}
HELP = ("-h", "--help")
# options of the old `fleet alerts` that did nothing with --ack
ACK_IGNORED = ("--json", "--all")


def _take(rest: list[str], option: str) -> tuple[list[str], str | None]:
    """``rest`` without ``option VALUE`` (or ``option=VALUE``), and the value."""
    for i, word in enumerate(rest):
        if word == option and i + 1 < len(rest):
            return rest[:i] + rest[i + 2 :], rest[i + 1]
        if word.startswith(option + "="):
            return rest[:i] + rest[i + 1 :], word.partition("=")[2]
    return rest, None


def _note(old: str, new: str) -> str:
    return (
        f"fleet: deprecated: use `{new}` instead of `{old}` (the old form goes in the next release)"
    )


def translate(argv: list[str]) -> tuple[list[str], str | None]:
    """The command line in the verb style, and the deprecation line to print (None if it was
    already in that style, or is no command this module knows)."""
    if not argv or argv[0] not in VERBS:
        return argv, None
    command, rest = argv[0], list(argv[1:])
    if not rest or rest[0] in VERBS[command] or rest[0] in HELP:
        return argv, None  # new style, or nothing to go on: the parser answers
    if command == "enroll":
        flags = [w for w in rest if w in ENROLL_FLAGS]
        if flags:
            verb = ENROLL_FLAGS[flags[0]]
            rest.remove(flags[0])  # any second mode flag stays: the parser refuses it
            return ["enroll", verb, *rest], _note(
                f"fleet enroll {flags[0]}", f"fleet enroll {verb} …"
            )
        return ["enroll", "add", *rest], _note(
            "fleet enroll SITE STATION", "fleet enroll add SITE STATION …"
        )
    if command == "alerts":
        rest, alert_id = _take(rest, "--ack")
        if alert_id is None:
            return ["alerts", "list", *rest], _note("fleet alerts", "fleet alerts list")
        rest = [w for w in rest if w not in ACK_IGNORED]
        return ["alerts", "ack", alert_id, *rest], _note(
            "fleet alerts --ack ID", "fleet alerts ack ID …"
        )
    rest, name = _take(rest, "--name")
    named = [name] if name is not None else []
    return ["user", "add", *named, *rest], _note("fleet user --name NAME", "fleet user add NAME …")
