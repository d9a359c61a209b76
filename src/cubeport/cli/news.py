"""News commands: post, list and remove the news items of the landing page and the Atom feed."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from cubeport.cli.base import AsJson, DataRoot, app, context_for, out
from cubeport.errors import InputError
from cubeport.platform.news import MAX_LIST, News

news_app = typer.Typer(
    help="News items: what `GET /news`, the Atom feed `/news.atom` and the landing page show.",
    no_args_is_help=True,
)
app.add_typer(news_app, name="news")


def _news(data_root: str | None) -> News:
    return News(context_for(data_root).db)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (e.g. a container)
        return "admin"


@news_app.command("post")
def news_post(
    title: Annotated[str, typer.Argument(help="At most 200 characters")],
    data_root: DataRoot = None,
    body: Annotated[str | None, typer.Option(help="The text (Markdown or plain), at most 64 KiB")] = None,
    body_file: Annotated[
        Path | None, typer.Option("--body-file", help="Read the text from this UTF-8 file ('-': stdin)")
    ] = None,
    link: Annotated[
        list[str] | None, typer.Option("--link", help="A URL to read more (repeatable); URL or 'URL TITLE'")
    ] = None,
    author: Annotated[str | None, typer.Option(help="Who posts it [default: your login name]")] = None,
    as_json: AsJson = False,
) -> None:
    """Post a news item now."""
    if body is not None and body_file is not None:
        raise InputError("give --body or --body-file, not both")
    text = body or ""
    if body_file is not None:
        try:
            text = (
                typer.get_text_stream("stdin").read()
                if str(body_file) == "-"
                else body_file.read_text("utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--body-file {body_file}: {exc}") from None
    links = [
        {"href": href, "title": title} for href, _, title in (v.strip().partition(" ") for v in link or [])
    ]
    item = _news(data_root).post(title, text, author or _user(), links=links)
    if as_json:
        out.print_json(json.dumps(item.to_dict()))
    else:
        out.print(f"posted news item {item.id}: {item.title}", markup=False)


@news_app.command("list")
def news_list(
    data_root: DataRoot = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIST, help="At most this many items")] = 20,
    as_json: AsJson = False,
) -> None:
    """List the news items, newest first."""
    items = _news(data_root).list(limit)
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in items]))
        return
    table = Table("id", "posted (UTC)", "author", "title")
    for i in items:
        table.add_row(str(i.id), f"{i.created:%Y-%m-%d %H:%M}", Text(i.author), Text(i.title))
    out.print(table if items else "no news items")


@news_app.command("remove")
def news_remove(
    item_id: Annotated[int, typer.Argument(metavar="ID", help="The item's id (`cubeport news list`)")],
    data_root: DataRoot = None,
) -> None:
    """Remove a news item (from the feed too)."""
    _news(data_root).delete(item_id)
    out.print(f"removed news item {item_id}")
