from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.order_read import OrderRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    order_id: str,
    *,
    wait: float | Unset = 0.0,
    if_none_match: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match

    params: dict[str, Any] = {}

    params["wait"] = wait

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/orders/{order_id}".format(
            order_id=quote(str(order_id), safe=""),
        ),
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Any | OrderRead | Problem | None:
    if response.status_code == 200:
        response_200 = OrderRead.from_dict(response.json())

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
) -> Response[Any | OrderRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    order_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | OrderRead | Problem]:
    """Read Order

     One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).

    Args:
        order_id (str):
        wait (float | Unset): Long poll: with `If-None-Match`, hold the request up to this many
            seconds (at most `MERCATO_REALTIME_MAX_WAIT_S`, 60 by default) until the order changes;
            answered at once when your version is not current. 304 when the wait ends unchanged.
            Default: 0.0.
        if_none_match (str | Unset): The version you have, as its ETag (`"3"`): 304 while it is
            current.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | OrderRead | Problem]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        wait=wait,
        if_none_match=if_none_match,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    order_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
    if_none_match: str | Unset = UNSET,
) -> Any | OrderRead | Problem | None:
    """Read Order

     One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).

    Args:
        order_id (str):
        wait (float | Unset): Long poll: with `If-None-Match`, hold the request up to this many
            seconds (at most `MERCATO_REALTIME_MAX_WAIT_S`, 60 by default) until the order changes;
            answered at once when your version is not current. 304 when the wait ends unchanged.
            Default: 0.0.
        if_none_match (str | Unset): The version you have, as its ETag (`"3"`): 304 while it is
            current.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | OrderRead | Problem
    """

    return sync_detailed(
        order_id=order_id,
        client=client,
        wait=wait,
        if_none_match=if_none_match,
    ).parsed


async def asyncio_detailed(
    order_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
    if_none_match: str | Unset = UNSET,
) -> Response[Any | OrderRead | Problem]:
    """Read Order

     One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).

    Args:
        order_id (str):
        wait (float | Unset): Long poll: with `If-None-Match`, hold the request up to this many
            seconds (at most `MERCATO_REALTIME_MAX_WAIT_S`, 60 by default) until the order changes;
            answered at once when your version is not current. 304 when the wait ends unchanged.
            Default: 0.0.
        if_none_match (str | Unset): The version you have, as its ETag (`"3"`): 304 while it is
            current.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | OrderRead | Problem]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        wait=wait,
        if_none_match=if_none_match,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    order_id: str,
    *,
    client: AuthenticatedClient,
    wait: float | Unset = 0.0,
    if_none_match: str | Unset = UNSET,
) -> Any | OrderRead | Problem | None:
    """Read Order

     One order (yours, or any for staff), with its version as ETag.

    Poll cheaply with `If-None-Match`; add `wait` to long poll (see `docs/realtime.md`).

    Args:
        order_id (str):
        wait (float | Unset): Long poll: with `If-None-Match`, hold the request up to this many
            seconds (at most `MERCATO_REALTIME_MAX_WAIT_S`, 60 by default) until the order changes;
            answered at once when your version is not current. 304 when the wait ends unchanged.
            Default: 0.0.
        if_none_match (str | Unset): The version you have, as its ETag (`"3"`): 304 while it is
            current.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | OrderRead | Problem
    """

    return (
        await asyncio_detailed(
            order_id=order_id,
            client=client,
            wait=wait,
            if_none_match=if_none_match,
        )
    ).parsed
