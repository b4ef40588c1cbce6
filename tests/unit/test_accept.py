"""Connections shared evenly by worker processes (mercato.web.accept), in one event loop: two
listeners on copies of one listening socket stand for two workers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from mercato.web.accept import (
    AWAY,
    HAND_OVER_EVERY_S,
    STEP_BACK_S,
    BalancedListener,
    ConnectionShares,
)

pytestmark = pytest.mark.anyio


class Held(asyncio.Protocol):
    """A connection that stays open, counted by the listener that accepted it."""

    def __init__(self, held: list[Held]) -> None:
        self.held = held
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.held.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.held.remove(self)


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def _listener(
    sock: socket.socket, shares: ConnectionShares, index: int
) -> tuple[BalancedListener, list[Held]]:
    held: list[Held] = []
    listener = BalancedListener(
        sock.dup(),
        lambda: Held(held),
        shares.slot(index),
        open_connections=lambda: len(held),
        backlog=64,
    )
    return listener.start(), held


async def _connect(port: int, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # connecting, not waiting for it
            client.connect(("127.0.0.1", port))
        clients.append(client)
    return clients


async def _close(clients: list[socket.socket], *held: list[Held]) -> None:
    for client in clients:
        client.close()
    for connections in held:
        for connection in list(connections):
            assert connection.transport is not None
            connection.transport.close()
    await _until(lambda: not any(held))


async def _until(condition: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)


async def test_connections_that_arrive_together_are_shared_evenly() -> None:
    sock = _listening()
    shares = ConnectionShares(2)
    (first, held_first), (second, held_second) = (_listener(sock, shares, i) for i in (0, 1))
    clients = await _connect(sock.getsockname()[1], 16)
    await _until(lambda: len(held_first) + len(held_second) == 16)
    assert (len(held_first), len(held_second)) == (8, 8)
    first.publish()
    second.publish()
    assert list(shares.counts) == [8, 8]
    await _close(clients, held_first, held_second)
    first.publish()
    second.publish()
    assert list(shares.counts) == [0, 0]  # closed connections leave the counts
    first.close()
    second.close()
    sock.close()


async def test_a_worker_with_more_steps_back_but_takes_what_its_siblings_leave() -> None:
    # the sibling claims to hold nothing but never accepts (busy, stuck): the connection
    # waits STEP_BACK_S, then the worker that stepped back takes it
    sock = _listening()
    shares = ConnectionShares(2)
    held: list[Held] = []
    listener = BalancedListener(
        sock.dup(),
        lambda: Held(held),
        shares.slot(0),
        open_connections=lambda: len(held) + 5,
        backlog=64,
    ).start()
    shares.slot(1).publish(0)
    started = time.monotonic()
    clients = await _connect(sock.getsockname()[1], 1)
    await _until(lambda: len(held) == 1)
    assert listener.stepped_back == 1
    assert time.monotonic() - started >= STEP_BACK_S
    listener.close()
    await _close(clients, held)
    sock.close()


async def test_no_worker_steps_back_for_one_that_does_not_accept() -> None:
    sock = _listening()
    shares = ConnectionShares(3)  # a sibling not started yet, another closed: both away
    listener, held = _listener(sock, shares, 0)
    gone, _ = _listener(sock, shares, 1)
    gone.close()
    assert shares.counts[1] == AWAY
    assert shares.counts[2] == AWAY
    clients = await _connect(sock.getsockname()[1], 3)
    await _until(lambda: len(held) == 3)
    assert listener.stepped_back == 0
    listener.close()
    await _close(clients, held)
    sock.close()


async def test_a_closed_listener_accepts_nothing_more() -> None:
    sock = _listening()
    shares = ConnectionShares(1)
    listener, held = _listener(sock, shares, 0)
    listener.close()
    await listener.wait_closed()
    sock.listen(8)
    clients = await _connect(sock.getsockname()[1], 2)
    await asyncio.sleep(0.05)
    assert held == []
    for client in clients:
        client.close()
    sock.close()


async def test_a_worker_holding_two_more_hands_one_connection_over_at_a_time() -> None:
    sock = _listening()
    shares = ConnectionShares(2)
    held = [9]
    listener = BalancedListener(
        sock.dup(),
        lambda: Held([]),
        shares.slot(0),
        open_connections=lambda: held[0],
        backlog=64,
    ).start()
    sibling = shares.slot(1)
    assert not listener.hand_over()  # the sibling is away: nobody to hand over to
    sibling.publish(8)
    assert not listener.hand_over()  # one more than the sibling: moving one would not help
    held[0] = 10
    assert listener.hand_over()
    assert not listener.hand_over()  # one at a time: the client has yet to reconnect
    await asyncio.sleep(HAND_OVER_EVERY_S * 1.5)
    assert listener.hand_over()
    assert listener.handed_over == 2
    await asyncio.sleep(HAND_OVER_EVERY_S * 1.5)
    sibling.publish(5_000)
    held[0] = 5_100
    assert not listener.hand_over()  # 2 % more of thousands of long polls: not worth moving
    held[0] = 5_102
    assert listener.hand_over()
    listener.close()
    assert not listener.hand_over()  # a listener that stopped accepting keeps what it has
    sock.close()
