"""The ledger's connection slots (auditor.scan.ledger): who gets a free slot first, and a ledger
that goes on from auditor.scan.early_contact to the scan keeping the slots in use. Real loopback
listeners; the waits are threads blocked on the ledger."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from auditor.scan.ledger import RANKS, SHORT, ConnectionCounter, Slots


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that accepts every connection (the kernel's backlog does; nobody reads)."""
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield server.getsockname()[1]
    server.close()


def _served_order(slots: Slots, ranks: list[int]) -> list[int]:
    """Start one waiter per rank, in this order, while the only slot is held; release it once per
    waiter; return the ranks in the order they were served."""
    assert slots.acquire(1.0)
    served: list[int] = []
    lock = threading.Lock()

    def wait(rank: int) -> None:
        assert slots.acquire(5.0, rank)
        with lock:
            served.append(rank)
        slots.release()

    threads = [threading.Thread(target=wait, args=(rank,)) for rank in ranks]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # each waits before the next one arrives
    slots.release()
    for thread in threads:
        thread.join(5)
    return served


def test_a_free_slot_goes_to_the_lowest_rank_whoever_came_first() -> None:
    assert _served_order(Slots(1), [SHORT, 1, SHORT, 0]) == [0, 1, SHORT, SHORT]


def test_the_chains_are_served_before_single_connections() -> None:
    """The suite enumeration and the groups offer one hello after another; a simulation does not."""
    assert (
        RANKS["suites"] < RANKS["order"] == RANKS["groups"] == RANKS["facts"] < RANKS["session_renegotiation"]
    )
    assert RANKS["session_renegotiation"] < RANKS.get("simulation", SHORT)


def test_setting_the_same_limit_again_keeps_the_slots_in_use(listener: int) -> None:
    """The scan sets its limit on the ledger early contact opened, with its connections in flight:
    the limit still counts them (a new semaphore would have allowed as many again)."""
    ledger = ConnectionCounter(timeout=5.0)
    ledger.set_limit(2)
    first = [ledger.open("127.0.0.1", listener, "simulation") for _ in range(2)]
    ledger.set_limit(2)
    opened: list[socket.socket] = []
    third = threading.Thread(target=lambda: opened.append(ledger.open("127.0.0.1", listener, "suites")))
    third.start()
    third.join(0.5)
    assert not opened, "a third connection opened beside two in flight with a limit of 2"
    first[0].close()
    third.join(5)
    assert len(opened) == 1
    for sock in [first[1], *opened]:
        sock.close()
