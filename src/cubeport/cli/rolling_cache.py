"""Cache commands: the rolling cache of remote data (stats, list, fetch, purge, pin, unpin)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, out
from cubeport.errors import InputError

cache_app = typer.Typer(
    help="The rolling cache of remote data (whole objects or byte ranges over HTTP), kept under a quota. "
    "Entries are named by their key: the URL, with #bytes=FIRST-LAST for a byte range, and source:NAME| "
    "before it for an entry fetched for a registered STAC source.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")
Key = Annotated[str, typer.Argument(metavar="KEY", help="An entry's key (see `cubeport cache list`)")]


def _size(value: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


@cache_app.command("stats")
def cache_stats(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """Show the quota, the bytes used, the watermarks and the counters (shared by every process)."""
    stats = context_for(data_root).cache.stats()
    if as_json:
        out.print_json(json.dumps(stats.to_dict()))
        return
    table = Table(show_header=False)
    ratio = stats.hit_ratio
    for label, value in (
        ("quota", _size(stats.quota_bytes)),
        ("used", f"{_size(stats.used_bytes)} ({stats.used_bytes / stats.quota_bytes:.1%})"),
        ("watermarks", f"high {stats.high_watermark:.0%}, low {stats.low_watermark:.0%}"),
        ("entries", f"{stats.entries} ({stats.pinned_entries} pinned, {_size(stats.pinned_bytes)})"),
        (
            "hits / misses",
            f"{stats.hits} / {stats.misses} (hit ratio {'-' if ratio is None else f'{ratio:.1%}'})",
        ),
        ("fetched / served", f"{_size(stats.bytes_fetched)} / {_size(stats.bytes_served)}"),
        ("evictions", str(stats.evictions)),
    ):
        table.add_row(label, value)
    out.print(table)


@cache_app.command("list")
def cache_list(
    data_root: DataRoot = None,
    prefix: Annotated[str | None, typer.Option(help="Only keys starting so, e.g. https://host/path/")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries")] = 100,
    as_json: AsJson = False,
) -> None:
    """List the entries, most recently used first."""
    entries = context_for(data_root).cache.entries(prefix, limit)
    if as_json:
        out.print_json(json.dumps([e.to_dict() for e in entries]))
        return
    table = Table("size", "last used (UTC)", "expires", "hits")
    table.add_column("key", overflow="fold")  # URLs are long: wrapped, never cut
    for e in entries:
        table.add_row(
            _size(e.size),
            f"{e.last_used:%Y-%m-%d %H:%M}",
            "pinned" if e.expires is None else f"{e.expires:%Y-%m-%d %H:%M}",
            str(e.hits),
            e.key,
        )
    out.print(table if entries else "the cache is empty")


@cache_app.command("fetch")
def cache_fetch(
    url: Annotated[str, typer.Argument(metavar="URL", help="An http(s) URL")],
    data_root: DataRoot = None,
    byte_range: Annotated[
        str | None,
        typer.Option(
            "--range", metavar="FIRST-LAST", help="Only these bytes (inclusive, as in an HTTP Range header)"
        ),
    ] = None,
    pin: Annotated[bool, typer.Option("--pin", help="Pin the entry once it is stored")] = False,
    source: Annotated[
        str | None,
        typer.Option(
            help="For this STAC source (`cubeport sources list`): with its headers, a URL under its base "
            "URL, into the entries its proxy serves"
        ),
    ] = None,
) -> None:
    """Fetch a URL into the cache (e.g. to warm it before a demo); a hit if it is there already."""
    context = context_for(data_root)
    cache = context.cache
    found = cache.fetch(
        url, byte_range=_range(byte_range), source=context.stac_sources.get(source) if source else None
    )
    if pin:
        cache.pin(found.key)
    out.print(
        f"{'hit' if found.hit else 'fetched'} {found.key}: {_size(found.size)}{', pinned' if pin else ''}"
    )


def _range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    first, _, last = text.partition("-")
    if not (first.isdigit() and last.isdigit()) or int(last) < int(first):
        raise InputError(f"--range {text!r}: give FIRST-LAST byte offsets, e.g. 0-1023")
    return int(first), int(last) + 1


@cache_app.command("purge")
def cache_purge(
    data_root: DataRoot = None,
    everything: Annotated[bool, typer.Option("--all", help="Every entry")] = False,
    expired: Annotated[bool, typer.Option("--expired", help="The entries older than the TTL")] = False,
    prefix: Annotated[str | None, typer.Option(help="The entries whose key starts so")] = None,
    include_pinned: Annotated[bool, typer.Option("--include-pinned", help="Pinned entries too")] = False,
) -> None:
    """Remove entries: --all, --expired, or --prefix (pinned ones stay unless --include-pinned)."""
    removed = context_for(data_root).cache.purge(
        everything=everything, expired=expired, prefix=prefix, include_pinned=include_pinned
    )
    out.print(f"removed {removed} {'entry' if removed == 1 else 'entries'}")


@cache_app.command("pin")
def cache_pin(key: Key, data_root: DataRoot = None) -> None:
    """Pin an entry: it is neither evicted nor expired until it is unpinned."""
    entry = context_for(data_root).cache.pin(key)
    out.print(f"pinned {entry.key} ({_size(entry.size)})")


@cache_app.command("unpin")
def cache_unpin(key: Key, data_root: DataRoot = None) -> None:
    """Unpin an entry: eviction and the TTL apply to it again."""
    entry = context_for(data_root).cache.unpin(key)
    out.print(f"unpinned {entry.key}")
