from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.follow_all_orders_type_item import FollowAllOrdersTypeItem
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    type_: list[FollowAllOrdersTypeItem] | Unset = UNSET,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(last_event_id_header, Unset):
        headers["Last-Event-ID"] = last_event_id_header

    params: dict[str, Any] = {}

    json_type_: list[str] | Unset = UNSET
    if not isinstance(type_, Unset):
        json_type_ = []
        for type_item_data in type_:
            type_item = type_item_data.value
            json_type_.append(type_item)

    params["type"] = json_type_

    params["last_event_id"] = last_event_id_query

    params["access_token"] = access_token

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/events",
        "params": params,
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | str | None:
    if response.status_code == 200:
        response_200 = response.text
        return response_200

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | str]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    type_: list[FollowAllOrdersTypeItem] | Unset = UNSET,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Response[Problem | str]:
    """Follow every order event (staff; Server-Sent Events)

     In event log order; without Last-Event-ID from the next event (docs/realtime.md).

    Args:
        type_ (list[FollowAllOrdersTypeItem] | Unset): Only these types (repeat, or comma-
            separated)
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | str]
    """

    kwargs = _get_kwargs(
        type_=type_,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    type_: list[FollowAllOrdersTypeItem] | Unset = UNSET,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Problem | str | None:
    """Follow every order event (staff; Server-Sent Events)

     In event log order; without Last-Event-ID from the next event (docs/realtime.md).

    Args:
        type_ (list[FollowAllOrdersTypeItem] | Unset): Only these types (repeat, or comma-
            separated)
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | str
    """

    return sync_detailed(
        client=client,
        type_=type_,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    type_: list[FollowAllOrdersTypeItem] | Unset = UNSET,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Response[Problem | str]:
    """Follow every order event (staff; Server-Sent Events)

     In event log order; without Last-Event-ID from the next event (docs/realtime.md).

    Args:
        type_ (list[FollowAllOrdersTypeItem] | Unset): Only these types (repeat, or comma-
            separated)
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | str]
    """

    kwargs = _get_kwargs(
        type_=type_,
        last_event_id_query=last_event_id_query,
        access_token=access_token,
        last_event_id_header=last_event_id_header,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    type_: list[FollowAllOrdersTypeItem] | Unset = UNSET,
    last_event_id_query: str | Unset = UNSET,
    access_token: str | Unset = UNSET,
    last_event_id_header: str | Unset = UNSET,
) -> Problem | str | None:
    """Follow every order event (staff; Server-Sent Events)

     In event log order; without Last-Event-ID from the next event (docs/realtime.md).

    Args:
        type_ (list[FollowAllOrdersTypeItem] | Unset): Only these types (repeat, or comma-
            separated)
        last_event_id_query (str | Unset): The same, for clients that cannot set headers.
        access_token (str | Unset): The bearer token, for EventSource (no headers).
        last_event_id_header (str | Unset): Resume after this event id (EventSource sends it).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | str
    """

    return (
        await asyncio_detailed(
            client=client,
            type_=type_,
            last_event_id_query=last_event_id_query,
            access_token=access_token,
            last_event_id_header=last_event_id_header,
        )
    ).parsed
