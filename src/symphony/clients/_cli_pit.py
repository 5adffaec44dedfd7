"""`symphony artifact ...` and `symphony pit ...`: the Pit's store from the command line.

The commands work on the store folder directly (``--store``, default ``.symphony/pit`` in the
current directory), whether or not a daemon runs: SQLite's WAL and file locks make a CLI and a
daemon safe to use one store at once. An encrypted store needs its key: ``--key-file``, or the
``SYMPHONY_PIT_KEY`` / ``SYMPHONY_PIT_KEY_FILE`` environment variables.

    symphony artifact put FILE      store FILE as the next version of its name; the last line
                                    printed is the content id
    symphony artifact get REF       the exact bytes, to stdout (or ``-o FILE``)
    symphony artifact ls            artifacts, newest first (latest versions unless --all)
    symphony artifact search WORDS  full-text search over content and metadata
    symphony artifact log NAME      the versions of a name, newest first, with their lineage
    symphony artifact stat REF      everything known about one artifact
    symphony artifact pin|unpin REF protect from deletion, or stop protecting
    symphony artifact rm REF        delete one version (protected ones need --force)
    symphony pit gc                 collect garbage (and with options apply retention, tiers)
    symphony pit fsck               check the store's consistency
    symphony pit stats              sizes and counts
    symphony pit keygen FILE        write a new random key file (mode 0600)

Output is for people; ``--json`` prints JSON for scripts. Errors are one line on stderr and the
exit status says what kind: 0 done; 1 not found, protected, or fsck found errors; 2 bad usage
or invalid argument; 3 key missing, wrong or not expected; 4 the stored data is damaged.

Only argparse is imported to build the command line; the store is imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from symphony.pit.artifacts import ArtifactInfo, ArtifactStore

__all__ = ["main", "register"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_KEY = 3
EXIT_DAMAGED = 4

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([kmgt]?)(?:i?b)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 3600, 90m, 12h, 30d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _size(text: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def register(subparsers: Any) -> None:
    """Add the ``artifact`` and ``pit`` commands to the ``symphony`` command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="DIR",
        help="the store folder (default: .symphony/pit in the current directory)",
    )
    common.add_argument("--key-file", metavar="FILE", help="key of an encrypted store")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    fmt = argparse.RawDescriptionHelpFormatter

    artifact = subparsers.add_parser(
        "artifact", help="put, get, list and search the Pit's artifacts (works without a daemon)"
    )
    commands = artifact.add_subparsers(title="artifact commands", metavar="COMMAND")
    artifact.set_defaults(func=lambda _args: _print_help(artifact))

    put = commands.add_parser(
        "put",
        parents=[common],
        formatter_class=fmt,
        help="store a file as the next version of its name",
        description="Store FILE ('-' for stdin) as the next version of --name (default: the "
        "path as given). The last line printed is the content id.",
    )
    put.add_argument("file", metavar="FILE")
    put.add_argument("--name", help="artifact name (required when FILE is '-')")
    put.add_argument(
        "--kind", default="file", help="code, diff, suggestion, log, ... (default file)"
    )
    put.add_argument("--tag", action="append", default=[], dest="tags", help="a tag (repeatable)")
    put.add_argument("--producer", help="who made it: extension id, workflow node, client")
    put.add_argument("--quality", type=float, help="quality score in [0, 1]")
    put.add_argument("--outcome", choices=("pending", "accepted", "rejected"))
    put.add_argument("--parent", metavar="REF", help="parent (default: the previous version)")
    put.add_argument("--no-parent", action="store_true", help="record no parent")
    put.add_argument("--meta", metavar="JSON", help="a JSON object of extra metadata")
    put.add_argument("--pin", action="store_true", help="protect it from deletion")
    put.set_defaults(func=_put)

    get = commands.add_parser(
        "get",
        parents=[common],
        help="write an artifact's exact bytes to stdout",
        description="REF is a content id (sha256:HEX, or a unique prefix), NAME or NAME@VERSION.",
    )
    get.add_argument("ref", metavar="REF")
    get.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    get.add_argument("--verify", action="store_true", help="check every hash while reading")
    get.set_defaults(func=_get)

    ls = commands.add_parser("ls", parents=[common], help="list artifacts, newest first")
    ls.add_argument("prefix", nargs="?", help="only names starting with this")
    ls.add_argument("--kind")
    ls.add_argument("--tag")
    ls.add_argument("--all", action="store_true", help="every version, not only the latest")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(func=_ls)

    search = commands.add_parser(
        "search",
        parents=[common],
        help="full-text search over content and metadata",
        description="All WORDS must match (word* matches a prefix); --raw takes an FTS5 query.",
    )
    search.add_argument("words", nargs="+", metavar="WORD")
    search.add_argument("--kind")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--all", action="store_true", help="every matching version")
    search.add_argument("--raw", action="store_true", help="the query is FTS5 syntax")
    search.set_defaults(func=_search)

    log = commands.add_parser("log", parents=[common], help="the versions of a name")
    log.add_argument("name", metavar="NAME")
    log.set_defaults(func=_log)

    stat = commands.add_parser("stat", parents=[common], help="everything about one artifact")
    stat.add_argument("ref", metavar="REF")
    stat.set_defaults(func=_stat)

    for name, helptext, handler in (
        ("pin", "protect an artifact from deletion", _pin),
        ("unpin", "stop protecting an artifact", _unpin),
    ):
        sub = commands.add_parser(name, parents=[common], help=helptext)
        sub.add_argument("ref", metavar="REF")
        sub.set_defaults(func=handler)

    rm = commands.add_parser("rm", parents=[common], help="delete one artifact version")
    rm.add_argument("ref", metavar="REF")
    rm.add_argument("--force", action="store_true", help="delete even if protected")
    rm.set_defaults(func=_rm)

    pit = subparsers.add_parser("pit", help="maintain the Pit's store: gc, fsck, stats, keygen")
    pit_commands = pit.add_subparsers(title="pit commands", metavar="COMMAND")
    pit.set_defaults(func=lambda _args: _print_help(pit))

    gc = pit_commands.add_parser(
        "gc",
        parents=[common],
        help="collect garbage; with options, apply retention and tiering first",
        description="Deletes what no artifact needs any more. With --keep-versions, --max-age "
        "or --budget it first deletes unprotected old versions; with --tiers it moves old "
        "content to the warm and cold tiers. --dry-run reports without changing anything.",
    )
    gc.add_argument("--dry-run", action="store_true", help="report, change nothing")
    gc.add_argument(
        "--grace",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="keep unreferenced data this long (default 1h; 0 only if nothing else runs)",
    )
    gc.add_argument("--keep-versions", type=int, metavar="N", help="keep the newest N per name")
    gc.add_argument("--max-age", type=_duration, metavar="DURATION", help="e.g. 30d")
    gc.add_argument("--budget", type=_size, metavar="SIZE", help="stored bytes, e.g. 2G")
    gc.add_argument("--tiers", action="store_true", help="apply the default tier policy")
    gc.set_defaults(func=_gc)

    fsck = pit_commands.add_parser("fsck", parents=[common], help="check the store")
    fsck.add_argument("--verify", action="store_true", help="also read and hash everything")
    fsck.set_defaults(func=_fsck)

    stats = pit_commands.add_parser("stats", parents=[common], help="sizes and counts")
    stats.set_defaults(func=_stats)

    keygen = pit_commands.add_parser("keygen", help="write a new random key file (mode 0600)")
    keygen.add_argument("file", metavar="FILE")
    keygen.set_defaults(func=_keygen)


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


# -- running commands ----------------------------------------------------------------------


def _open(args: argparse.Namespace, *, create: bool = False) -> ArtifactStore:
    from symphony.pit.artifacts import ArtifactStore, default_store_path

    path = args.store if args.store else default_store_path(os.getcwd())
    return ArtifactStore.open(path, key_file=args.key_file, create=create)


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Map the store's errors to one line on stderr and an exit status."""

    def run(args: argparse.Namespace) -> int:
        from symphony.pit import (
            EncryptionError,
            IntegrityError,
            InvalidArgument,
            NotFound,
            PitError,
            ProtectedArtifact,
            StoreFormatError,
        )

        try:
            return command(args)
        except BrokenPipeError:
            # The reader went away (`| head`): not our error. Keep the exit flush quiet too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except (InvalidArgument, StoreFormatError) as exc:
            return _fail(exc, EXIT_USAGE)
        except EncryptionError as exc:
            return _fail(exc, EXIT_KEY)
        except IntegrityError as exc:
            return _fail(exc, EXIT_DAMAGED)
        except (NotFound, ProtectedArtifact, PitError, LookupError) as exc:
            return _fail(exc, EXIT_FAILURE)
        except OSError as exc:
            return _fail(exc, EXIT_FAILURE)

    run.__name__ = command.__name__
    return run


def _fail(exc: BaseException, status: int) -> int:
    print(f"symphony: error: {exc}", file=sys.stderr)
    return status


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _short(cid: str) -> str:
    return cid[: len("sha256:") + 12]


def _line(info: ArtifactInfo) -> str:
    flags = ("P" if info.pinned else "-") + (info.tier[0] if info.tier != "hot" else "-")
    return (
        f"{info.id:>6}  {flags}  {_when(info.created_at)}  {info.size:>10}  "
        f"{info.kind:<15} {info.ref}"
    )


@_guarded
def _put(args: argparse.Namespace) -> int:
    from symphony.pit.artifacts import AUTO

    if args.file == "-" and not args.name:
        return _fail(ValueError("--name is required when reading stdin"), EXIT_USAGE)
    name = args.name or os.path.normpath(args.file).replace(os.sep, "/")
    meta = None
    if args.meta:
        try:
            meta = json.loads(args.meta)
        except json.JSONDecodeError as exc:
            return _fail(ValueError(f"--meta is not JSON: {exc}"), EXIT_USAGE)
    parent: Any = None if args.no_parent else (args.parent if args.parent else AUTO)
    with _open(args, create=True) as store:
        source = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
        try:
            result = store.put(
                source,
                name=name,
                kind=args.kind,
                parent=parent,
                producer=args.producer,
                quality=args.quality,
                outcome=args.outcome,
                tags=args.tags,
                meta=meta,
                pinned=args.pin,
            )
        finally:
            if source is not sys.stdin.buffer:
                source.close()
    if args.json:
        _print_json(result.to_json())
        return EXIT_OK
    info = result.artifact
    print(
        f"stored {info.ref} ({info.size} bytes; {result.new_chunks} of {result.chunks} chunks "
        f"new, {result.stored_bytes} bytes written)"
    )
    print(info.content_id)
    return EXIT_OK


@_guarded
def _get(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.output:
            tmp = f"{args.output}.partial"
            with open(tmp, "wb") as out:
                for piece in store.iter_content(args.ref, verify=args.verify):
                    out.write(piece)
            os.replace(tmp, args.output)
            return EXIT_OK
        stdout = sys.stdout.buffer
        for piece in store.iter_content(args.ref, verify=args.verify):
            stdout.write(piece)
        stdout.flush()
    return EXIT_OK


@_guarded
def _ls(args: argparse.Namespace) -> int:
    with _open(args) as store:
        infos = store.list_artifacts(
            name_prefix=args.prefix,
            kind=args.kind,
            tag=args.tag,
            heads_only=not args.all,
            limit=args.limit,
        )
    if args.json:
        _print_json([info.to_json() for info in infos])
    else:
        for info in infos:
            print(_line(info))
    return EXIT_OK


@_guarded
def _search(args: argparse.Namespace) -> int:
    with _open(args) as store:
        hits = store.search(
            " ".join(args.words),
            kind=args.kind,
            limit=args.limit,
            all_versions=args.all,
            raw=args.raw,
        )
    if args.json:
        _print_json([hit.to_json() for hit in hits])
        return EXIT_OK
    for hit in hits:
        print(_line(hit.artifact))
        snippet = " ".join(hit.snippet.split())
        print(f"        {hit.matched}: {snippet}")
    return EXIT_OK if hits else EXIT_FAILURE


@_guarded
def _log(args: argparse.Namespace) -> int:
    with _open(args) as store:
        versions = list(reversed(store.versions(args.name)))
    if args.json:
        _print_json([info.to_json() for info in versions])
        return EXIT_OK
    by_id = {info.id: info for info in versions}
    for info in versions:
        parent = by_id.get(info.parent_id) if info.parent_id else None
        print(f"{info.ref}  {info.content_id}")
        details = [_when(info.created_at), f"{info.size} bytes", info.kind]
        if info.parent_id is not None:
            details.append(f"parent {parent.ref if parent else '#' + str(info.parent_id)}")
        if info.producer:
            details.append(f"by {info.producer}")
        if info.tags:
            details.append("tags " + ",".join(info.tags))
        if info.pinned:
            details.append("pinned")
        print("    " + "; ".join(details))
    return EXIT_OK


@_guarded
def _stat(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = store.stat(args.ref)
        protection = store.protection(info.id)
        relations = store.relations(info.id)
    if args.json:
        out = info.to_json()
        out["protection"] = list(protection)
        out["relations"] = [r.to_json() for r in relations]
        _print_json(out)
        return EXIT_OK
    fields: Sequence[tuple[str, object]] = (
        ("ref", info.ref),
        ("id", info.id),
        ("content id", info.content_id),
        ("size", info.size),
        ("kind", info.kind),
        ("created", _when(info.created_at)),
        ("parent", info.parent_id),
        ("producer", info.producer),
        ("quality", info.quality),
        ("outcome", info.outcome),
        ("pinned", info.pinned),
        ("tier", info.tier),
        ("tags", ", ".join(info.tags)),
        ("meta", json.dumps(info.meta, sort_keys=True) if info.meta else ""),
        ("protected", ", ".join(protection) or "no"),
    )
    for key, value in fields:
        print(f"{key + ':':<12} {'' if value is None else value}")
    for rel in relations:
        print(f"{'relation:':<12} #{rel.source_id} {rel.relation} #{rel.target_id}")
    return EXIT_OK


@_guarded
def _pin(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = store.pin(args.ref)
    if args.json:
        _print_json(info.to_json())
    else:
        print(f"pinned {info.ref}")
    return EXIT_OK


@_guarded
def _unpin(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = store.unpin(args.ref)
    if args.json:
        _print_json(info.to_json())
    else:
        print(f"unpinned {info.ref}")
    return EXIT_OK


@_guarded
def _rm(args: argparse.Namespace) -> int:
    with _open(args) as store:
        info = store.delete(args.ref, force=args.force)
    if args.json:
        _print_json(info.to_json())
    else:
        print(f"deleted {info.ref} (its content goes at the next gc if nothing else uses it)")
    return EXIT_OK


@_guarded
def _gc(args: argparse.Namespace) -> int:
    from symphony.pit.stale import DEFAULT_GRACE, RetentionPolicy, StaleManager, TierPolicy

    retention = RetentionPolicy(
        max_age=args.max_age, keep_versions=args.keep_versions, size_budget=args.budget
    )
    with _open(args) as store:
        manager = StaleManager(
            store,
            retention=retention,
            tiers=TierPolicy() if args.tiers else None,
            gc_grace=DEFAULT_GRACE if args.grace is None else args.grace,
        )
        if retention.active or args.tiers:
            report = manager.run(dry_run=args.dry_run)
        else:
            report = manager.gc(dry_run=args.dry_run)
    if args.json:
        _print_json(report.to_json())
        return EXIT_OK
    verb = "would delete" if args.dry_run else "deleted"
    for deletion in report.deleted_artifacts:
        print(f"{verb} {deletion.ref} ({deletion.reason})")
    if report.kept_protected:
        print(f"kept {report.kept_protected} protected artifacts a rule selected")
    lines = [
        ("contents collected", report.blobs_collected),
        ("chunks collected", report.chunks_collected),
        ("chunks waiting out the grace period", report.chunks_waiting),
        ("chunks marked unreferenced", report.chunks_marked),
        ("packs deleted", report.packs_deleted),
        ("packs compacted", report.packs_compacted),
        ("stray files deleted", report.files_deleted),
        ("content tier changes", report.tier_changes),
        ("chunks re-encoded for their tier", report.chunks_retiered),
        ("database pages freed", report.pages_vacuumed),
    ]
    freed = report.chunk_bytes_freed + report.pack_bytes_freed + report.file_bytes_freed
    print(
        ("dry run: " if args.dry_run else "")
        + f"{freed} bytes "
        + ("could be freed" if args.dry_run else "freed")
    )
    for label, count in lines:
        if count:
            print(f"  {label}: {count}")
    return EXIT_OK


@_guarded
def _fsck(args: argparse.Namespace) -> int:
    from symphony.pit.artifacts import fsck

    with _open(args) as store:
        report = fsck(store, verify=args.verify)
    if args.json:
        _print_json(report.to_json())
    else:
        for problem in report.errors:
            print(f"error: {problem.code}: {problem.message}")
        for problem in report.collectable:
            print(f"collectable: {problem.code}: {problem.message}")
        checked = ", ".join(f"{count} {what}" for what, count in report.checked.items())
        print(("ok" if report.ok else "NOT OK") + f": checked {checked}")
    return EXIT_OK if report.ok else EXIT_FAILURE


@_guarded
def _stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        stats = store.stats()
    if args.json:
        _print_json(stats.to_json())
        return EXIT_OK
    for key, value in stats.to_json().items():
        print(f"{key + ':':<15} {value}")
    return EXIT_OK


@_guarded
def _keygen(args: argparse.Namespace) -> int:
    from symphony.pit.artifacts import write_key_file

    try:
        write_key_file(args.file)
    except FileExistsError:
        return _fail(FileExistsError(f"{args.file} exists; not overwriting a key"), EXIT_USAGE)
    print(f"wrote a new key to {args.file}; keep it: without it the store cannot be read")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run only these commands (``symphony`` itself does this once they are registered)."""
    parser = argparse.ArgumentParser(prog="symphony")
    register(parser.add_subparsers(title="commands", metavar="COMMAND"))
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    status: int = func(args)
    return status
