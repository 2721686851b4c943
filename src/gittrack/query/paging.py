"""One pager for every search: runs, experiments, registered models and model versions.

A page token is the offset of the page's first result in the ordered list of matches,
written as base64 of ``{"offset": N}`` so that it reads as opaque, as MLflow's tokens do.
The same token format is used by every search; a token no search returned is refused with an
``InvalidInputError`` that names it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from gittrack.errors import InvalidInputError
from gittrack.tracking import validation

__all__ = ["PagedList", "decode_page_token", "encode_page_token", "page_of"]

T = TypeVar("T")
_MAX_TOKEN_LENGTH = 200


class PagedList(list):  # type: ignore[type-arg]
    """A page of search results; ``token`` continues the search (None on the last page)."""

    def __init__(self, items: Sequence[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token


def encode_page_token(offset: int) -> str:
    """The token of the page that starts at ``offset`` (an index into the ordered matches)."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(page_token: str | bytes | None) -> int:
    """The offset a page token names; 0 for ``None`` or an empty token.

    Raises:
        InvalidInputError: the token is not one :func:`encode_page_token` made (it names the
            token, cut to 40 characters).
    """
    if page_token is None or page_token in ("", b""):
        return 0
    if isinstance(page_token, bytes):  # MLflow's sqlite store hands out its tokens as bytes
        page_token = page_token.decode("ascii", errors="replace")
    if not isinstance(page_token, str) or len(page_token) > _MAX_TOKEN_LENGTH:
        raise _foreign(page_token)
    try:
        offset = json.loads(base64.b64decode(page_token, validate=True))["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _foreign(page_token) from exc
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise _foreign(page_token)
    return offset


def page_of(items: Sequence[T], max_results: int | None, page_token: str | None) -> PagedList:
    """The page of ``items`` that ``page_token`` names, at most ``max_results`` long.

    Args:
        items: every match, in the search's order.
        max_results: the page size; ``None`` returns everything from the token on.
        page_token: a token a previous page returned, or ``None`` for the first page.

    Returns:
        A :class:`PagedList` whose ``token`` names the next page, or ``None`` on the last.

    Raises:
        InvalidInputError: a foreign page token, or a page size that is not a positive integer.
    """
    start = decode_page_token(page_token)
    if max_results is None:
        return PagedList(items[start:])
    end = start + validation.check_max_results(max_results)
    return PagedList(items[start:end], encode_page_token(end) if end < len(items) else None)


def _foreign(page_token: object) -> InvalidInputError:
    shown = str(page_token)[:40]
    return InvalidInputError(
        f"page token {shown!r} is not one a search returned; pass the token of the previous "
        "page (its .token), or none for the first page"
    )
