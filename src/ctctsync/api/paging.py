"""Paginators: one small object per envelope style, each refusing to loop.

A paginator only *reads* a decoded body: :meth:`Paginator.parse` returns a :class:`Page`
(the records plus the raw next link, if any) or raises :class:`ShapeError` when the body is
not the promised shape (the client retries that as a malformed answer). Following the next
link -- resolving it, dropping the old query, guarding against repeats -- is done by
:func:`resolve_next_link` and :class:`LoopGuard`, used by ``ApiClient.pages``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from ctctsync.errors import pagination_loop

# The envelope styles are declared with the table sources that name them (ctctsync.tables);
# re-exported here beside the paginators that read them.
from ctctsync.tables import Envelope

__all__ = [
    "Envelope",
    "ForeignNextLinkError",
    "LoopGuard",
    "Page",
    "Paginator",
    "ShapeError",
    "V2ArrayPaginator",
    "V2ObjectPaginator",
    "V2ResultsPaginator",
    "V3CursorPaginator",
    "V3LinksPaginator",
    "paginator_for",
    "resolve_next_link",
]


class ShapeError(ValueError):
    """A decoded body is not the shape its envelope promises."""


@dataclass
class Page:
    """One page of raw records and the raw next link (None on the last page)."""

    records: list[dict[str, Any]]
    next_link: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Paginator(Protocol):
    """Reads one decoded body into a :class:`Page`."""

    def parse(self, body: Any) -> Page: ...


def _records(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ShapeError(f"{where} is {type(value).__name__}, not a list")
    for item in value:
        if not isinstance(item, dict):
            raise ShapeError(f"{where} holds a {type(item).__name__}, not an object")
    return value


class V2ResultsPaginator:
    """``{meta:{pagination:{next_link}}, results}``; the last page has ``pagination: {}``
    with no ``next_link`` key at all -- constant-contact-api.md §1.3."""

    def parse(self, body: Any) -> Page:
        if not isinstance(body, dict):
            raise ShapeError(f"body is {type(body).__name__}, not an object")
        if "results" not in body:
            raise ShapeError("body has no 'results'")
        records = _records(body["results"], "results")
        meta = body.get("meta")
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise ShapeError("'meta' is not an object")
        pagination = meta.get("pagination")
        pagination = {} if pagination is None else pagination
        if not isinstance(pagination, dict):
            raise ShapeError("'meta.pagination' is not an object")
        link = pagination.get("next_link")
        if link is not None and not isinstance(link, str):
            raise ShapeError("'next_link' is not a string")
        return Page(records=records, next_link=link or None, meta=meta)


class V2ArrayPaginator:
    """A bare JSON array, not paginated (``GET /v2/lists``) -- constant-contact-api.md §7."""

    def parse(self, body: Any) -> Page:
        return Page(records=_records(body, "body"))


class V2ObjectPaginator:
    """A single object is the one record (account info, campaign summary) -- §5, §9."""

    def parse(self, body: Any) -> Page:
        if not isinstance(body, dict):
            raise ShapeError(f"body is {type(body).__name__}, not an object")
        return Page(records=[body])


@dataclass(frozen=True)
class V3LinksPaginator:
    """v3: records under ``records_key``, next page at ``_links.next.href``: path-relative,
    carrying the first request's filters in its cursor, and absent (or ``_links: {}``, or a
    null href) on the last page -- constant-contact-v3-api.md §1.3."""

    records_key: str

    def parse(self, body: Any) -> Page:
        if not isinstance(body, dict):
            raise ShapeError(f"body is {type(body).__name__}, not an object")
        records = _records(body.get(self.records_key, []), self.records_key)
        links = body.get("_links") or {}
        nxt = links.get("next") if isinstance(links, dict) else None
        href = nxt.get("href") if isinstance(nxt, dict) else None
        if href is not None and not isinstance(href, str):
            raise ShapeError("'_links.next.href' is not a string")
        return Page(records=records, next_link=href or None)


@dataclass(frozen=True)
class V3CursorPaginator:
    """v3 events and registrations: records under ``records_key``, the next page named by
    ``next_cursor`` and asked for as ``<path>?next=<cursor>`` (plus ``params``, e.g. the
    ``limit``, sent again with every page) -- constant-contact-v3-api.md §1.3, §3.11.

    UNCONFIRMED: whether their ``_links.next.href`` is filled in practice; the contract
    documents ``next_cursor`` and the ``next`` parameter, so those are used. A page without
    records ends the read even if it names a cursor (nothing more can follow an empty page,
    and it keeps a server that always names a fresh cursor from looping)."""

    records_key: str
    path: str
    params: Mapping[str, str | int] = field(default_factory=lambda: MappingProxyType({}))

    def parse(self, body: Any) -> Page:
        if not isinstance(body, dict):
            raise ShapeError(f"body is {type(body).__name__}, not an object")
        records = _records(body.get(self.records_key, []), self.records_key)
        cursor = body.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ShapeError("'next_cursor' is not a string")
        if not cursor or not records:
            return Page(records=records)
        query = urlencode({**self.params, "next": cursor})
        return Page(records=records, next_link=f"{self.path}?{query}")


def paginator_for(
    envelope: Envelope, records_key: str | None = None, path: str | None = None
) -> Paginator:
    """The paginator of an envelope style (``v3_links``/``v3_cursor`` need ``records_key``;
    ``v3_cursor`` also the collection's ``path``)."""
    if envelope == "v2_results":
        return V2ResultsPaginator()
    if envelope == "v2_array":
        return V2ArrayPaginator()
    if envelope in ("v2_object", "v3_object"):
        return V2ObjectPaginator()
    if records_key is None:
        raise ValueError(f"the {envelope} envelope needs records_key")
    if envelope == "v3_cursor":
        if path is None:
            raise ValueError("the v3_cursor envelope needs the collection's path")
        return V3CursorPaginator(records_key, path)
    return V3LinksPaginator(records_key)


class ForeignNextLinkError(ShapeError):
    """A next link points at another host: following it would leak the API key."""


def resolve_next_link(base_url: str, next_link: str) -> tuple[str, dict[str, str]]:
    """``(url, params)`` of the request that fetches the page ``next_link`` names.

    The link is relative (``/v2/contacts?next=…``) and carries only ``next``; it "may only
    be used by itself", so the first request's query (limit, modified_since, status) is
    dropped and only the link's own parameters are sent (the client adds ``api_key``) --
    constant-contact-api.md §1.3. It is resolved against the base URL's origin *and path
    prefix* (the Java SDK strips the leading "/" and joins it to the base URL), so a base
    URL such as ``http://host/ctct`` keeps working. An absolute link is followed only if it
    is on the base URL's host.
    """
    link = urlsplit(next_link)
    base = urlsplit(base_url)
    if link.scheme or link.netloc:
        if (link.scheme, link.netloc) != (base.scheme, base.netloc):
            raise ForeignNextLinkError("next link points at another host")
        url = f"{link.scheme}://{link.netloc}{link.path}"
    else:
        path = link.path if link.path.startswith("/") else "/" + link.path
        url = base_url.rstrip("/") + path
    params = dict(parse_qsl(link.query, keep_blank_values=True))
    return url, params


class LoopGuard:
    """Remembers every next link of one read; a repeat raises :class:`PaginationLoop`."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._seen: set[str] = set()

    def check(self, next_link: str) -> None:
        if next_link in self._seen:
            raise pagination_loop(self.endpoint, next_link)
        self._seen.add(next_link)
