from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.search_results import SearchResults
from ...types import UNSET, Response, Unset


def _get_kwargs(
    product_id: str,
    *,
    limit: int | Unset = 10,
    if_none_match: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    params: dict[str, Any] = {}

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/products/{product_id}/similar".format(
            product_id=quote(str(product_id), safe=""),
        ),
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

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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
    product_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 10,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | SearchResults]:
    """Similar Products

     Active products nearest in meaning to this one, most similar first.

    Scores are cosine similarities of the products' embeddings; the list is empty until the
    product has been indexed (seconds after it was created or renamed).

    Args:
        product_id (str):
        limit (int | Unset):  Default: 10.
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | SearchResults]
    """

    kwargs = _get_kwargs(
        product_id=product_id,
        limit=limit,
        if_none_match=if_none_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    product_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 10,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | SearchResults | None:
    """Similar Products

     Active products nearest in meaning to this one, most similar first.

    Scores are cosine similarities of the products' embeddings; the list is empty until the
    product has been indexed (seconds after it was created or renamed).

    Args:
        product_id (str):
        limit (int | Unset):  Default: 10.
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | SearchResults
    """

    return sync_detailed(
        product_id=product_id,
        client=client,
        limit=limit,
        if_none_match=if_none_match,
    ).parsed


async def asyncio_detailed(
    product_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 10,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | Problem | SearchResults]:
    """Similar Products

     Active products nearest in meaning to this one, most similar first.

    Scores are cosine similarities of the products' embeddings; the list is empty until the
    product has been indexed (seconds after it was created or renamed).

    Args:
        product_id (str):
        limit (int | Unset):  Default: 10.
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | SearchResults]
    """

    kwargs = _get_kwargs(
        product_id=product_id,
        limit=limit,
        if_none_match=if_none_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    product_id: str,
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 10,
    if_none_match: str | Unset = UNSET,
) -> Any | Problem | SearchResults | None:
    """Similar Products

     Active products nearest in meaning to this one, most similar first.

    Scores are cosine similarities of the products' embeddings; the list is empty until the
    product has been indexed (seconds after it was created or renamed).

    Args:
        product_id (str):
        limit (int | Unset):  Default: 10.
        if_none_match (str | Unset): The ETag of an earlier answer

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | SearchResults
    """

    return (
        await asyncio_detailed(
            product_id=product_id,
            client=client,
            limit=limit,
            if_none_match=if_none_match,
        )
    ).parsed
