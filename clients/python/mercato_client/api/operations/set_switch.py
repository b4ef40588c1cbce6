from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.switch import Switch
from ...models.switch_read import SwitchRead
from ...models.switch_update import SwitchUpdate
from ...types import UNSET, Response, Unset


def _get_kwargs(
    name: Switch,
    *,
    body: SwitchUpdate,
    idempotency_key: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/v1/admin/switches/{name}".format(
            name=quote(str(name), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | SwitchRead | None:
    if response.status_code == 200:
        response_200 = SwitchRead.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

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
) -> Response[Problem | SwitchRead]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: Switch,
    *,
    client: AuthenticatedClient,
    body: SwitchUpdate,
    idempotency_key: str | Unset = UNSET,
) -> Response[Problem | SwitchRead]:
    """Set Switch

     Turn a switch off or on; every replica follows within two seconds (staff only).

    Args:
        name (Switch): What can be switched off.
        idempotency_key (str | Unset):
        body (SwitchUpdate): The new state of a switch and why (the reason is shown to refused
            clients).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SwitchRead]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: Switch,
    *,
    client: AuthenticatedClient,
    body: SwitchUpdate,
    idempotency_key: str | Unset = UNSET,
) -> Problem | SwitchRead | None:
    """Set Switch

     Turn a switch off or on; every replica follows within two seconds (staff only).

    Args:
        name (Switch): What can be switched off.
        idempotency_key (str | Unset):
        body (SwitchUpdate): The new state of a switch and why (the reason is shown to refused
            clients).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SwitchRead
    """

    return sync_detailed(
        name=name,
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    name: Switch,
    *,
    client: AuthenticatedClient,
    body: SwitchUpdate,
    idempotency_key: str | Unset = UNSET,
) -> Response[Problem | SwitchRead]:
    """Set Switch

     Turn a switch off or on; every replica follows within two seconds (staff only).

    Args:
        name (Switch): What can be switched off.
        idempotency_key (str | Unset):
        body (SwitchUpdate): The new state of a switch and why (the reason is shown to refused
            clients).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | SwitchRead]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: Switch,
    *,
    client: AuthenticatedClient,
    body: SwitchUpdate,
    idempotency_key: str | Unset = UNSET,
) -> Problem | SwitchRead | None:
    """Set Switch

     Turn a switch off or on; every replica follows within two seconds (staff only).

    Args:
        name (Switch): What can be switched off.
        idempotency_key (str | Unset):
        body (SwitchUpdate): The new state of a switch and why (the reason is shown to refused
            clients).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | SwitchRead
    """

    return (
        await asyncio_detailed(
            name=name,
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
