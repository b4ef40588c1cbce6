from http import HTTPStatus
from typing import Any, cast

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.search_results import SearchResults
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    q: str,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    in_stock: bool | Unset = False,
    min_price: int | Unset = UNSET,
    max_price: int | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    params: dict[str, Any] = {}

    params["q"] = q

    params["limit"] = limit

    params["cursor"] = cursor

    params["in_stock"] = in_stock

    params["min_price"] = min_price

    params["max_price"] = max_price

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/products/search",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | Problem | SearchResults | None:
    if response.status_code == 200:
        response_200 = SearchResults.from_dict(response.json())

        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[Any | Problem | SearchResults]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    in_stock: bool | Unset = False,
    min_price: int | Unset = UNSET,
    max_price: int | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | SearchResults]:
    """Search Products

     Search active products by words, typos, SKU and meaning, best match first.

    An exact SKU comes first; then products ranked by reciprocal-rank fusion of full-text,
    trigram and (once the model has indexed the catalog) semantic matches. Answers carry an
    ETag: send it back in `If-None-Match` for a 304 while the results are unchanged.

    Args:
        q (str): What the shopper typed: words, part of a word, a SKU, a description
        limit (int | Unset):  Default: 20.
        cursor (str | Unset): next_cursor of the previous page
        in_stock (bool | Unset): only products available now Default: False.
        min_price (int | Unset): minor units, inclusive
        max_price (int | Unset): minor units, inclusive
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | SearchResults]
    """

    kwargs = _get_kwargs(
        q=q,
        limit=limit,
        cursor=cursor,
        in_stock=in_stock,
        min_price=min_price,
        max_price=max_price,
        if_none_match=if_none_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    in_stock: bool | Unset = False,
    min_price: int | Unset = UNSET,
    max_price: int | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | SearchResults | None:
    """Search Products

     Search active products by words, typos, SKU and meaning, best match first.

    An exact SKU comes first; then products ranked by reciprocal-rank fusion of full-text,
    trigram and (once the model has indexed the catalog) semantic matches. Answers carry an
    ETag: send it back in `If-None-Match` for a 304 while the results are unchanged.

    Args:
        q (str): What the shopper typed: words, part of a word, a SKU, a description
        limit (int | Unset):  Default: 20.
        cursor (str | Unset): next_cursor of the previous page
        in_stock (bool | Unset): only products available now Default: False.
        min_price (int | Unset): minor units, inclusive
        max_price (int | Unset): minor units, inclusive
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | SearchResults
    """

    return sync_detailed(
        client=client,
        q=q,
        limit=limit,
        cursor=cursor,
        in_stock=in_stock,
        min_price=min_price,
        max_price=max_price,
        if_none_match=if_none_match,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    in_stock: bool | Unset = False,
    min_price: int | Unset = UNSET,
    max_price: int | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | SearchResults]:
    """Search Products

     Search active products by words, typos, SKU and meaning, best match first.

    An exact SKU comes first; then products ranked by reciprocal-rank fusion of full-text,
    trigram and (once the model has indexed the catalog) semantic matches. Answers carry an
    ETag: send it back in `If-None-Match` for a 304 while the results are unchanged.

    Args:
        q (str): What the shopper typed: words, part of a word, a SKU, a description
        limit (int | Unset):  Default: 20.
        cursor (str | Unset): next_cursor of the previous page
        in_stock (bool | Unset): only products available now Default: False.
        min_price (int | Unset): minor units, inclusive
        max_price (int | Unset): minor units, inclusive
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | SearchResults]
    """

    kwargs = _get_kwargs(
        q=q,
        limit=limit,
        cursor=cursor,
        in_stock=in_stock,
        min_price=min_price,
        max_price=max_price,
        if_none_match=if_none_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    q: str,
    limit: int | Unset = 20,
    cursor: str | Unset = UNSET,
    in_stock: bool | Unset = False,
    min_price: int | Unset = UNSET,
    max_price: int | Unset = UNSET,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | SearchResults | None:
    """Search Products

     Search active products by words, typos, SKU and meaning, best match first.

    An exact SKU comes first; then products ranked by reciprocal-rank fusion of full-text,
    trigram and (once the model has indexed the catalog) semantic matches. Answers carry an
    ETag: send it back in `If-None-Match` for a 304 while the results are unchanged.

    Args:
        q (str): What the shopper typed: words, part of a word, a SKU, a description
        limit (int | Unset):  Default: 20.
        cursor (str | Unset): next_cursor of the previous page
        in_stock (bool | Unset): only products available now Default: False.
        min_price (int | Unset): minor units, inclusive
        max_price (int | Unset): minor units, inclusive
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | SearchResults
    """

    return (
        await asyncio_detailed(
            client=client,
            q=q,
            limit=limit,
            cursor=cursor,
            in_stock=in_stock,
            min_price=min_price,
            max_price=max_price,
            if_none_match=if_none_match,
        )
    ).parsed
