from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    order_id: str,
    *,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(last_event_id_header, Unset):
        headers["Last-Event-ID"] = last_event_id_header

    params: dict[str, Any] = {}

    params["last_event_id"] = last_event_id_query

    params["access_token"] = access_token

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/orders/{order_id}/events".format(
            order_id=quote(str(order_id), safe=""),
        ),
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | str | None:
    if response.status_code == 200:
        response_200 = response.text
        return response_200

    if response.status_code == 204:
        response_204 = cast(Any, None)
        return response_204

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem | str]:
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
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Response[Any | Problem | str]:
    """Follow one order's events (Server-Sent Events)

     History after `Last-Event-ID` (all of it without), then live events; ends after
    OrderDelivered or OrderCancelled (docs/realtime.md).

    Args:
        order_id (str):
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | str]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    order_id: str,
    *,
    client: AuthenticatedClient,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Any | Problem | str | None:
    """Follow one order's events (Server-Sent Events)

     History after `Last-Event-ID` (all of it without), then live events; ends after
    OrderDelivered or OrderCancelled (docs/realtime.md).

    Args:
        order_id (str):
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | str
    """

    return sync_detailed(
        order_id=order_id,
        client=client,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    ).parsed


async def asyncio_detailed(
    order_id: str,
    *,
    client: AuthenticatedClient,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Response[Any | Problem | str]:
    """Follow one order's events (Server-Sent Events)

     History after `Last-Event-ID` (all of it without), then live events; ends after
    OrderDelivered or OrderCancelled (docs/realtime.md).

    Args:
        order_id (str):
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem | str]
    """

    kwargs = _get_kwargs(
        order_id=order_id,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    order_id: str,
    *,
    client: AuthenticatedClient,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Any | Problem | str | None:
    """Follow one order's events (Server-Sent Events)

     History after `Last-Event-ID` (all of it without), then live events; ends after
    OrderDelivered or OrderCancelled (docs/realtime.md).

    Args:
        order_id (str):
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem | str
    """

    return (
        await asyncio_detailed(
            order_id=order_id,
            client=client,
            last_event_id_query=last_event_id_query,
            access_token=access_token,
            last_event_id_header=last_event_id_header,
        )
    ).parsed
