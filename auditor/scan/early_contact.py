"""A target's first connections, made while the scanning stack is still being imported.

`auditor audit` spends a few tenths of a second importing sslyze and the evidence models before the
scan proper can start. The first connection of every fast scan is sslyze's TLS 1.3 connectivity
check (auditor.scan.tls _probe_connectivity): a TLS 1.3 handshake with OpenSSL's default suites,
SNI, no client certificate. This module makes that handshake with nassl alone (light to import),
in a thread, as soon as the command knows the target, so that the round trips overlap the imports.
It also asks for a stapled OCSP response, as sslyze's certificate job for TLS 1.3 with SNI does: the
same handshake, so that job takes this one's chain instead of connecting again (a status request
is what every browser sends; a server that fails on it fails the contact, and sslyze's own check
and job then run as before).

One client simulation is replayed beside it (auditor.scan.replay), and once the server has answered
TLS 1.3 the other simulations, the post-quantum probe and the protocol facts follow: the very calls
the scan makes for a TLS 1.3 server, which need nothing the scan finds. The scan takes their
outcomes instead of making them again.

All of it goes through the target's own ledger (auditor.scan.ledger), opened here: the same
connection limit, deadlines, counts and "the server stopped answering" watch as the rest of the
scan, which goes on with that ledger (`take`). A port that never speaks gets its two attempts (the
contact and the simulation beside it) at once, and nothing more.

Only a handshake that completed without a client-certificate request stands in for sslyze's
check. Any other outcome stays in the ledger as the attempt it was (a timeout counts toward "the
server never answers", an answer as an answer) and the scan runs sslyze's check as before, so its
verdicts and messages are sslyze's; such a server (no TLS 1.3, a client certificate asked for, no
TLS at all) costs one connection more than before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum, SslClient

from auditor.clients import CLIENTS
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.raw_hello import server_name_for
from auditor.scan.replay import Exchange, Hello, distinct_hellos, hello_of, replay

Key = tuple[int, str]  # (port, host): one early handshake per target; the name is sent as SNI
T = TypeVar("T")


@dataclass(frozen=True)
class Contact:
    """What the early handshake found, with which address, and the ledger the scan goes on with."""

    address: str | None  # None: the name did not resolve, or no TCP connection
    cipher: str | None  # the suite the server chose (OpenSSL name) when the handshake completed
    client_certificate_requested: bool = False
    timed_out: bool = False  # the connection's deadline passed (a silent or a trickling server)
    answered: bool = False  # the connection ended before its deadline, by the server's doing or ours
    first_bytes: bytes = b""  # what the server sent first (names what it speaks)
    # the chain (PEM) and stapled OCSP response (nassl's) it received: sslyze's certificate job for
    # TLS 1.3 with SNI asks for them in this very handshake (auditor.scan.tls takes them)
    chain: tuple[str, ...] = ()
    ocsp_response: Any = None
    ledger: ConnectionCounter | None = None  # every connection made so far to this address
    # the client simulations begun after a usable handshake, by ClientHello (auditor.scan.replay)
    simulations: Mapping[Hello, Future[Exchange]] = field(default_factory=dict)
    # and the post-quantum and protocol-facts probes of a TLS 1.3 server, begun with them: the
    # outcomes of auditor.scan.post_quantum.probe_if_tls13 and auditor.scan.protocol_facts.measure
    quantum: Future[Any] | None = None
    facts: Future[Any] | None = None

    @property
    def usable(self) -> bool:
        """It stands in for sslyze's TLS 1.3 connectivity check."""
        return self.cipher is not None and not self.client_certificate_requested


def _handshake(host: str, port: int, address: str | None, pending: _Pending) -> Contact:
    ledger = pending.ledger
    try:
        if address is None:  # the system resolver, as the audit's own endpoint lookup uses
            address = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
        ledger.probe = (address, port, server_name_for(host))
        sock = ledger.open(address, port, "connectivity")
    except (OSError, Unanswered):
        return Contact(address=None, cipher=None)
    with _lock:
        abandoned = pending.abandoned
        if not abandoned:
            pending.settled.set()
    if abandoned:  # the scan began without it, with a ledger of its own: send nothing more
        sock.cut = True
        sock.close()
        return Contact(address=None, cipher=None)
    # One simulation beside it (a server that never speaks still gets two attempts, not more): the
    # connection slots would otherwise wait idle for the contact's round trips.
    first = distinct_hellos(CLIENTS)[0]
    pending.beside = {hello_of(first): _spawn(replay, first, host, port, address, ledger.timeout, ledger)}
    client = SslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_3,
        ssl_verify=OpenSslVerifyEnum.NONE,
        ignore_client_authentication_requests=False,
    )
    client.set_tlsext_host_name(host)
    client.set_tlsext_status_ocsp()  # as sslyze's certificate job does (a stapled response is judged)
    client.set_underlying_socket(sock)
    chain: tuple[str, ...] = ()
    ocsp_response = None
    try:
        client.do_handshake()
        cipher: str | None = client.get_current_cipher_name()
        requested = False
        chain, ocsp_response = tuple(client.get_received_chain()), client.get_tlsext_status_ocsp_resp()
    except ClientCertificateRequested:
        cipher, requested = None, True
    except Exception:  # noqa: BLE001  (any other outcome: sslyze's check runs and names it)
        cipher, requested = None, False
    finally:
        with contextlib.suppress(Exception):
            client.shutdown()
        sock.close()
    return Contact(
        address=address,
        cipher=cipher,
        client_certificate_requested=requested,
        timed_out=sock.timed_out,
        answered=not sock.untrusted,
        first_bytes=sock.first_bytes,
        chain=chain,
        ocsp_response=ocsp_response,
        ledger=ledger,
    )


def _spawn(function: Callable[..., T], *args: object) -> Future[T]:
    """`function(*args)` in a daemon thread of its own (nothing to join at exit: each ends by its deadline)."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001  (handed to whoever takes it)
            future.set_exception(exc)

    threading.Thread(target=run, name="early-simulation", daemon=True).start()
    return future


def _follow(host: str, port: int, contact: Contact, beside: dict[Hello, Future[Exchange]]) -> Contact:
    """The contact with what follows it. After a usable contact (the server answers TLS 1.3), what
    needs nothing the scan finds, through the contact's ledger (which holds it all to the connection
    limit, chains first): the other distinct reference ClientHellos replayed, the post-quantum probe
    and the protocol facts, the very calls the scan would make for a TLS 1.3 server (auditor.scan.tls
    takes them). Otherwise only the simulation made `beside` the contact, once it has ended."""
    if not contact.usable or contact.ledger is None or contact.address is None:
        for exchange in beside.values():  # ends by its deadline, as the contact did: the ledger has
            exchange.result()  # seen both attempts when the scan takes it
        return replace(contact, simulations=beside)
    ledger = contact.ledger
    simulations = dict(beside)
    for profile in distinct_hellos(CLIENTS):
        if hello_of(profile) not in simulations:
            simulations[hello_of(profile)] = _spawn(
                replay, profile, host, port, contact.address, ledger.timeout, ledger
            )
    # lazy: these load the evidence models and cryptography, which the command imports meanwhile
    from auditor.scan import dh_size, post_quantum, protocol_facts

    where = dh_size.target(host, port, contact.address, ledger.timeout)
    return replace(
        contact,
        simulations=simulations,
        quantum=_spawn(post_quantum.probe_if_tls13, where, ledger, True),
        facts=_spawn(protocol_facts.measure, where, "TLS 1.3", ledger),
    )


@dataclass
class _Pending:
    outcome: Future[Contact]
    # the TCP connection is up (the handshake ends by its deadline), or the contact is over (refused...)
    settled: threading.Event
    ledger: ConnectionCounter
    abandoned: bool = False  # the scan began while it still waited for its TCP connection
    beside: dict[Hello, Future[Exchange]] = field(default_factory=dict)  # the simulation beside it


_lock = threading.Lock()
_contacts: dict[Key, _Pending] = {}


def start(host: str, port: int, address: str | None, timeout: float, connections: int = 5) -> None:
    """Begin the handshake with `address` (None: what the system resolver gives first) in a daemon
    thread, through a new ledger of `timeout` and `connections` at once; the scan of that endpoint
    takes its outcome and its ledger."""
    ledger = ConnectionCounter(timeout=timeout)
    ledger.set_limit(connections)
    pending = _Pending(Future(), threading.Event(), ledger)
    with _lock:
        if (port, host) in _contacts:
            return
        _contacts[(port, host)] = pending

    def run() -> None:
        try:
            contact = _handshake(host, port, address, pending)
            pending.outcome.set_result(_follow(host, port, contact, pending.beside))
        except BaseException as exc:  # noqa: BLE001  (handed to whoever takes it)
            pending.outcome.set_exception(exc)
        finally:
            pending.settled.set()  # a refused or unresolvable contact is not waited for either

    threading.Thread(target=run, name="early-contact", daemon=True).start()


CONNECT_GRACE = 1.0  # seconds the scan waits for the early TCP connection before giving it up


def take(address: str, port: int, host: str) -> Contact | None:
    """The outcome of the early handshake with this endpoint, or None when none was made with it.
    A handshake under way is waited for (it ends by its deadline); one still without its TCP
    connection after CONNECT_GRACE is given up (a filtered port would otherwise cost the scan a
    whole timeout before sslyze's own attempts). Each outcome is taken once."""
    with _lock:
        pending = _contacts.get((port, host))
    if pending is None:
        return None
    pending.settled.wait(CONNECT_GRACE)
    with _lock:
        if not pending.outcome.done() and not pending.settled.is_set():
            pending.abandoned = True
            _contacts.pop((port, host), None)
            return None
    try:
        contact = pending.outcome.result()
    except Exception:  # noqa: BLE001  (a bug here costs nothing but the head start)
        contact = None
    if contact is None or contact.address != address:
        return None  # another address of the name (its endpoint takes it), or nothing to take
    with _lock:
        if _contacts.get((port, host)) is not pending:
            return None  # taken meanwhile
        del _contacts[(port, host)]
    return contact
