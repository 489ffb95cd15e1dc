"""The fast, polite suite enumerator: per protocol, the accepted suites in the server's own
preference order, in (accepted + 1) connections instead of one connection per known suite.

How: offer every candidate suite in one ClientHello; the server picks its favourite; remove it
and offer the rest again, until the server refuses. Then offer the two favourites in reverse
order once: if the server still picks its favourite, it enforces its own order. ChaCha20 suites
are offered last and never lead the order probe, because a server with OpenSSL's PrioritizeChaCha
gives ChaCha20 to a client that lists it first: that would look like client order; whether the
server does so is probed once on its own (ProtocolSupport.chacha_priority). Groups are
enumerated the same way. Built on nassl through sslyze's connection helper, so the candidate
suites and client quirks are exactly those of sslyze's exhaustive scan (the oracle test checks it):
TLS 1.3 suites go through set_ciphersuites(), SSL 2.0/3.0 and TLS 1.0/1.1 through the legacy
client, TLS 1.2 through the modern client and then the legacy one for the weak suites only it
can send. A refusal without a TLS alert (closed, reset, silent) of a large offer is retried in
batches of BATCH suites, for servers and middleboxes that choke on large ClientHellos.

A DH group the client refused as too small is measured by a raw ClientHello (auditor.scan.dh_size).

A timeout is never an answer: an offer whose connection hit its deadline (auditor.scan.ledger)
is made once more; a second deadline makes the protocol "not tested" (Unanswered), never "refused".

Connections are counted per phase (auditor.scan.ledger): "suites", "batches", "order",
"groups", "dh".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from nassl.ephemeral_key_info import EcDhEphemeralKeyInfo, EphemeralKeyInfo, OpenSslEcNidEnum
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum, SslClient
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ConnectionToServerFailed,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite as SslyzeSuite
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.server_connectivity import ServerConnectivityInfo, TlsVersionEnum

from auditor.model import Attempt, AttemptErrorReason, CipherSuite, Probe, ProtocolSupport
from auditor.scan import dh_size
from auditor.scan.connections import counting
from auditor.scan.ledger import ConnectionCounter, FirstFlightRead, Unanswered
from auditor.suites import describe, is_chacha

VERSIONS: dict[str, TlsVersionEnum] = {
    "SSL 2.0": TlsVersionEnum.SSL_2_0,
    "SSL 3.0": TlsVersionEnum.SSL_3_0,
    "TLS 1.0": TlsVersionEnum.TLS_1_0,
    "TLS 1.1": TlsVersionEnum.TLS_1_1,
    "TLS 1.2": TlsVersionEnum.TLS_1_2,
    "TLS 1.3": TlsVersionEnum.TLS_1_3,
}
# Groups nassl's modern client can offer, well-known ones first; enumerated in server preference order.
_FIRST = [
    OpenSslEcNidEnum.X25519,
    OpenSslEcNidEnum.X448,
    OpenSslEcNidEnum.SECP256R1,
    OpenSslEcNidEnum.SECP384R1,
    OpenSslEcNidEnum.SECP521R1,
]
GROUPS: list[OpenSslEcNidEnum] = _FIRST + sorted(
    set(OpenSslEcNidEnum.get_supported_by_ssl_client()) - set(_FIRST), key=lambda nid: nid.value
)
# OpenSSL's names for the NIST curves differ from the TLS registry's; reports use the registry's.
_GROUP_ALIASES = {"prime256v1": "secp256r1", "prime192v1": "secp192r1"}


def group_name(curve_name: str) -> str:
    return _GROUP_ALIASES.get(curve_name, curve_name)


T = TypeVar("T")
# Largest number of suites offered in one ClientHello when a server refuses the full list.
BATCH = 32


@dataclass
class _Pick:
    suite: SslyzeSuite | None  # None: the server refused every offered suite
    key: EphemeralKeyInfo | None = None
    # How a refusal looked: "alert" (the server answered with a TLS alert: it has nothing in common
    # with the offer), "dropped" (it closed or reset: maybe it choked on the hello) or "timeout" (no
    # complete answer by the connection's deadline: no answer at all).
    refusal: str | None = None


@dataclass
class Enumeration:
    protocols: list[ProtocolSupport] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _requires_legacy(version: TlsVersionEnum, openssl_name: str, modern_names: set[str]) -> bool:
    """TLS 1.3 needs the modern client and SSL/TLS < 1.2 the legacy one; in TLS 1.2 every suite the
    modern client can offer goes through it, so that one ClientHello holds as many as possible and
    the server's choice among them is its real preference."""
    if version is TlsVersionEnum.TLS_1_3:
        return False
    if version is TlsVersionEnum.TLS_1_2:
        return openssl_name not in modern_names
    return True


def _legacy_tls12_names() -> set[str]:
    client = LegacySslClient(ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE)
    client.set_cipher_list("ALL:COMPLEMENTOFALL")
    return set(client.get_cipher_list())


def _modern_tls12_names() -> set[str]:
    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE)
    client.set_cipher_list("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return set(client.get_cipher_list())


class Enumerator:
    def __init__(self, server: ServerConnectivityInfo, counter: ConnectionCounter) -> None:
        self.server, self.counter = server, counter
        self.silenced: set[TlsVersionEnum] = set()  # protocols refused by silence (see _enumerate_with)
        # called with (protocol, suite) when the first suite of a protocol is accepted (the scan
        # starts its fallback probe then: auditor.scan.tls)
        self.on_first_pick: Callable[[str, SslyzeSuite], None] | None = None
        self._modern_names = _modern_tls12_names()
        self._legacy_capable = _legacy_tls12_names()
        network = server.network_configuration
        self._dh_target = dh_size.target(
            network.tls_server_name_indication,
            server.server_location.port,
            server.server_location.ip_address,
            network.network_timeout,
        )

    def _handshake(
        self,
        version: TlsVersionEnum,
        legacy: bool,
        offered: list[SslyzeSuite],
        groups: list[OpenSslEcNidEnum] | None = None,
        phase: str = "suites",
    ) -> _Pick:
        """One connection offering `offered` (in this order); which suite did the server pick?

        Raises ConnectionToServerFailed when the TCP connection itself fails: that is not an
        answer about suites, and the protocol is then reported as not tested."""
        connection = self.server.get_preconfigured_tls_connection(
            override_tls_version=version, should_use_legacy_openssl=legacy
        )
        client = connection.ssl_client
        names = ":".join(s.openssl_name for s in offered)
        if version is TlsVersionEnum.TLS_1_3 and isinstance(client, SslClient):  # always the modern client
            client.set_ciphersuites(names)
        elif isinstance(client, SslClient):
            client.set_cipher_list(names + ":@SECLEVEL=0")  # weak suites and old protocols, as offered
        else:
            client.set_cipher_list(names)
        if groups is not None and isinstance(client, SslClient):
            client.set_groups(groups)
        key = None
        block = None
        # Up to TLS 1.2 the suite and the key exchange are known once the client answers the server's
        # first flight: the round trip for the server's Finished is skipped (FirstFlightRead).
        first_flight = version not in (TlsVersionEnum.TLS_1_3, TlsVersionEnum.SSL_2_0)
        try:
            with (
                counting(self.counter, phase, first_flight=first_flight) as block,
                contextlib.suppress(FirstFlightRead),
            ):
                connection.connect(should_retry_connection=True)  # retries TCP connect timeouts only
            key = client.get_ephemeral_key()
        except ServerTlsConfigurationNotSupported:
            pass  # the server chose a suite, with a DH group our client refused: measured later (dh_size)
        except ClientCertificateRequested:  # the server chose a suite; it wants a client certificate
            try:
                key = client.get_ephemeral_key()  # as sslyze does: the key exchange happened already
            except Exception:  # noqa: BLE001  (no key to read: the suite stands without it)
                key = None
        except ServerRejectedTlsHandshake as exc:
            if block is not None and block.untrusted:  # ended at its deadline: silence, not a refusal
                return _Pick(None, refusal="timeout")
            answered = exc.error_message.startswith(("TLS alert", "TLS error"))
            return _Pick(None, refusal="alert" if answered else "dropped")
        except TlsHandshakeTimedOut:
            return _Pick(None, refusal="timeout")
        except NoCiphersAvailableBugInSSlyze:
            return _Pick(None, refusal="alert")  # nothing offered that this client can send
        except (ConnectionToServerFailed, Unanswered):
            raise
        except Exception:  # noqa: BLE001  (an OpenSSL error sslyze does not classify: the handshake failed)
            if block is not None and block.untrusted:
                return _Pick(None, refusal="timeout")
            return _Pick(None, refusal="alert")
        finally:
            with contextlib.suppress(Exception):  # OpenSSL's shutdown of an unfinished handshake may fail
                connection.close()
            if (sock := client.get_underlying_socket()) is not None:
                sock.close()  # closed even when OpenSSL's shutdown of an unfinished handshake failed
            if self.counter.stopped and block is not None and block.untrusted:
                raise Unanswered(self.counter.stopped)  # cut by the ledger: nothing was learnt
        chosen = client.get_current_cipher_name()
        match = next((s for s in offered if s.openssl_name == chosen), None)
        return _Pick(match, key, refusal=None if match else "alert")

    def _remove_loop(
        self,
        version: TlsVersionEnum,
        legacy: bool,
        candidates: list[SslyzeSuite],
        phase: str = "suites",
        on_pick: Callable[[list[tuple[SslyzeSuite, EphemeralKeyInfo | None]]], None] | None = None,
    ) -> tuple[list[tuple[SslyzeSuite, EphemeralKeyInfo | None]], str | None]:
        """Offer all, keep the server's pick, remove it, repeat: picks in server preference order,
        and how the last (refused) offer was refused."""
        accepted: list[tuple[SslyzeSuite, EphemeralKeyInfo | None]] = []
        remaining = _chacha_last(candidates)
        refusal = None
        while remaining:
            pick = self._handshake(version, legacy, remaining, phase=phase)
            if pick.suite is None and pick.refusal in ("dropped", "timeout") and accepted:
                # A server under load drops one handshake: the same offer once more before ending the list.
                pick = self._handshake(version, legacy, remaining, phase=phase)
                if pick.suite is None and pick.refusal == "timeout" and accepted:
                    raise Unanswered(
                        f"{len(accepted)} suites found, then no answer within "
                        f"{self.counter.timeout:g} s (twice)"
                    )
            if pick.suite is None:
                refusal = pick.refusal
                break
            accepted.append((pick.suite, pick.key))
            remaining.remove(pick.suite)
            if on_pick is not None:
                on_pick(accepted)
        return accepted, refusal

    def _enumerate_with(
        self,
        version: TlsVersionEnum,
        legacy: bool,
        candidates: list[SslyzeSuite],
        on_pick: Callable[[list[tuple[SslyzeSuite, EphemeralKeyInfo | None]]], None] | None = None,
    ) -> list[tuple[SslyzeSuite, EphemeralKeyInfo | None]]:
        accepted, refusal = self._remove_loop(version, legacy, candidates, on_pick=on_pick)
        if accepted or refusal == "alert":
            # An alert to the full offer means "nothing in common" (or "not this protocol"): done.
            return accepted
        if refusal == "timeout":
            # Silence to a whole offer: some servers ignore a hello they do not speak (SSL 2.0 to
            # OpenSSL 1.0.1e without it). A refusal while the server keeps answering; "not tested" if
            # the ledger finds that it stopped answering (see silenced_protocols).
            self.silenced.add(version)
        if len(candidates) <= BATCH:
            return accepted
        # Refused without an alert: maybe the protocol is off, or maybe the server (or a middlebox)
        # chokes on a large ClientHello. Offer smaller batches; if any is accepted, enumerate each
        # batch, then order the union by one more pass over the accepted suites only.
        found: list[SslyzeSuite] = []
        unanswered = 0
        for start in range(0, len(candidates), BATCH):
            picks, batch_refusal = self._remove_loop(
                version, legacy, candidates[start : start + BATCH], phase="batches"
            )
            found += [s for s, _ in picks]
            unanswered += not picks and batch_refusal == "timeout"
        if found:
            return self._remove_loop(version, legacy, found)[0]
        if unanswered:
            self.silenced.add(version)
        return []

    def protocol(self, label: str) -> ProtocolSupport:
        """Accepted suites of one protocol, in the server's order when it enforces one."""
        version = VERSIONS[label]
        candidates = sorted(CipherSuitesRepository.get_all_cipher_suites(version), key=lambda s: s.name)
        modern = [s for s in candidates if not _requires_legacy(version, s.openssl_name, self._modern_names)]
        legacy = [s for s in candidates if _requires_legacy(version, s.openssl_name, self._modern_names)]
        picks = []
        early: dict[tuple[SslyzeSuite, SslyzeSuite], Future[bool | None]] = {}

        def overlap(accepted: list[tuple[SslyzeSuite, EphemeralKeyInfo | None]]) -> None:
            # The order probe needs only the two favourites: it runs beside the rest of the enumeration
            # (a thread of its own; the ledger keeps connections_per_server).
            if len(accepted) == 1 and self.on_first_pick is not None:
                self.on_first_pick(label, accepted[0][0])
            pair = _order_pair([s for s, _ in accepted])
            if pair is not None and not early and _plain_pair(pair):
                early[pair] = spawn(self._enforces_order, version, [pair[0], pair[1]])

        if modern:
            picks += self._enumerate_with(version, False, modern, on_pick=overlap)
        legacy_picks = []
        if version is TlsVersionEnum.TLS_1_2:
            # Weak suites (NULL, anonymous, export) the modern client lists but will not negotiate:
            # offer the ones it did not get to the legacy client as well, as sslyze does.
            found = {s for s, _ in picks}
            legacy += [s for s in modern if s not in found and s.openssl_name in self._legacy_capable]
        if legacy:
            legacy_picks = self._enumerate_with(version, True, legacy)
        if picks and legacy_picks and all(s.openssl_name in self._legacy_capable for s, _ in picks):
            # TLS 1.2 suites found by both clients: one more pass with the legacy client, which can
            # offer them all, puts them in a single server order (ephemeral keys from the first passes).
            keys = dict(picks + legacy_picks)
            ordered, _ = self._remove_loop(version, True, [s for s, _ in picks + legacy_picks], phase="order")
            if {s for s, _ in ordered} == set(keys):
                picks, legacy_picks = [(s, keys[s]) for s, _ in ordered], []
        picks += legacy_picks
        suites = [
            dh_size.complete(self._describe(s, key), label, self._dh_target, self.counter) for s, key in picks
        ]
        order = [s for s, _ in picks]
        pair = _order_pair(order)
        if pair is not None and pair in early:
            enforces = early[pair].result()
        else:
            enforces = self._enforces_order(version, order)  # None: fewer than two suites, or no answer
        for future in early.values():
            future.result()  # never leave its connection behind
        preferred_group = next((s.ephemeral_group for s in suites if s.ephemeral_group), None)
        if enforces is False:
            # The server follows the client: the order found is ours, not the server's.
            return ProtocolSupport(
                version=label,
                supported=True,
                suites=suites,
                in_server_order=False,
                server_enforces_order=False,
                preferred_group=preferred_group,
            )
        return ProtocolSupport(
            version=label,
            supported=bool(suites),
            suites=suites,
            in_server_order=bool(suites),
            server_enforces_order=enforces,
            preferred_group=preferred_group,
            chacha_priority=self._chacha_priority(version, order) if enforces else None,
        )

    def _client_for(self, version: TlsVersionEnum, offer: list[SslyzeSuite]) -> bool | None:
        """Which client can send every suite of `offer` in one hello: True the legacy one, False the
        modern one, None neither (a TLS 1.2 mix only the two clients together can send)."""
        if not any(_requires_legacy(version, s.openssl_name, self._modern_names) for s in offer):
            return False
        if version is not TlsVersionEnum.TLS_1_2 or all(
            s.openssl_name in self._legacy_capable for s in offer
        ):
            return True
        return None

    def _first_pick(self, version: TlsVersionEnum, offer: list[SslyzeSuite]) -> SslyzeSuite | None:
        """The server's pick from `offer` sent in this order (None: no answer, or no client can send it)."""
        legacy = self._client_for(version, offer)
        return None if legacy is None else self._handshake(version, legacy, offer, phase="order").suite

    def _enforces_order(self, version: TlsVersionEnum, order: list[SslyzeSuite]) -> bool | None:
        """Offer two favourites reversed: does the server still take its own favourite?

        The pair is the two favourite non-ChaCha20 suites when there are two. Otherwise, when the
        reversed offer would start with ChaCha20 before a non-ChaCha20 suite, a suite the server does
        not accept goes in front, so that PrioritizeChaCha (which looks at the client's first suite
        only) cannot pass for client order."""
        if len(order) < 2:
            return None
        plain = [s for s in order if not is_chacha(s.name)]
        favourite, runner_up = plain[:2] if len(plain) >= 2 else order[:2]
        offer = [runner_up, favourite]
        if is_chacha(runner_up.name) and not is_chacha(favourite.name):
            pad = self._refused_plain_suite(version, order, offer)
            if pad is None:
                return None
            offer = [pad, *offer]
        pick = self._first_pick(version, offer)
        return None if pick is None else pick == favourite

    def _refused_plain_suite(
        self, version: TlsVersionEnum, accepted: list[SslyzeSuite], offer: list[SslyzeSuite]
    ) -> SslyzeSuite | None:
        """A non-ChaCha20 suite the server does not accept that one client can send with `offer`
        (strong ones first: a client may leave weak suites it lists out of its hello)."""
        weak = ("NULL", "anon", "EXPORT", "RC4", "DES", "MD5")
        pads = [
            s
            for s in CipherSuitesRepository.get_all_cipher_suites(version)
            if s not in accepted
            and not is_chacha(s.name)
            and self._client_for(version, [s, *offer]) is not None
        ]
        return min(pads, key=lambda s: (any(w in s.name for w in weak), s.name), default=None)

    def _chacha_priority(self, version: TlsVersionEnum, order: list[SslyzeSuite]) -> bool | None:
        """Does a client that lists ChaCha20 first get it, where the server prefers another suite?
        Offers the first ChaCha20 suite below the favourite non-ChaCha20 one, before it (as testssl.sh)."""
        plain_at = next((i for i, s in enumerate(order) if not is_chacha(s.name)), None)
        if plain_at is None:
            return None
        chacha = next((s for s in order[plain_at + 1 :] if is_chacha(s.name)), None)
        if chacha is None:
            return None
        pick = self._first_pick(version, [chacha, order[plain_at]])
        return None if pick is None else pick == chacha

    @staticmethod
    def _describe(suite: SslyzeSuite, key: EphemeralKeyInfo | None) -> CipherSuite:
        curve = getattr(key, "curve_name", None)
        group = group_name(curve) if curve else (key.type_name if key else None)
        return describe(
            suite.name,
            openssl_name=suite.openssl_name,
            bits=suite.key_size,
            ephemeral_group=group,
            ephemeral_bits=key.size if key else None,
        )

    def groups(self, protocols: list[ProtocolSupport]) -> list[str]:
        """Supported ECDH groups in server preference order, over the best modern protocol."""
        label = group_protocol(protocols)
        return self.groups_over(label) if label else []

    def groups_over(self, label: str) -> list[str]:
        """Supported ECDH groups in server preference order, offering them all in one protocol and
        removing the server's pick each time (as for suites)."""
        version = VERSIONS[label]
        # Only the modern client can set its groups; it speaks TLS 1.0-1.3 with the ECDHE suites it knows.
        offered_suites = [
            s
            for s in CipherSuitesRepository.get_all_cipher_suites(version)
            if version is TlsVersionEnum.TLS_1_3
            or (s.openssl_name.startswith("ECDHE") and s.openssl_name in self._modern_names)
        ]
        found: list[str] = []
        remaining = list(GROUPS)
        while remaining:
            pick = self._handshake(version, False, offered_suites, groups=remaining, phase="groups")
            if pick.refusal == "timeout":
                raise Unanswered(
                    f"{len(found)} groups found, then no answer within {self.counter.timeout:g} s"
                )
            key = pick.key
            if pick.suite is None or not isinstance(key, EcDhEphemeralKeyInfo):
                break
            try:
                nid = OpenSslEcNidEnum(key.curve)
            except ValueError:
                break
            if nid not in remaining:
                break
            found.append(group_name(key.curve_name))
            remaining.remove(nid)
        return found


def _order_pair(order: list[SslyzeSuite]) -> tuple[SslyzeSuite, SslyzeSuite] | None:
    """The favourite and runner-up the order probe offers reversed (see _enforces_order)."""
    plain = [s for s in order if not is_chacha(s.name)]
    if len(plain) >= 2:
        return plain[0], plain[1]
    return (order[0], order[1]) if len(order) >= 2 else None


def _plain_pair(pair: tuple[SslyzeSuite, SslyzeSuite]) -> bool:
    """Two non-ChaCha20 favourites: no later pick can change them (a later pick comes after them)."""
    return not is_chacha(pair[0].name) and not is_chacha(pair[1].name)


def spawn(function: Callable[..., T], *args: object) -> Future[T]:
    """`function(*args)` in a thread of its own (not queued behind a pool's work); the ledger still
    keeps connections_per_server."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001  (handed to whoever waits)
            future.set_exception(exc)

    threading.Thread(target=run, name=f"tls-{function.__name__.strip('_')}", daemon=True).start()
    return future


def _chacha_last(suites: list[SslyzeSuite]) -> list[SslyzeSuite]:
    """The offer with ChaCha20 suites at the end (stable): a ChaCha20 suite first in a ClientHello
    makes a PrioritizeChaCha server pick it, which is not the server's order."""
    return sorted(suites, key=lambda s: is_chacha(s.name))


def recheck_silenced(
    enumerator: Enumerator, protocols: list[ProtocolSupport], errors: dict[Probe, Attempt]
) -> None:
    """A protocol "refused" by silence is not tested when the server turned out to stop answering."""
    if not enumerator.counter.stopped:
        return
    for p in protocols:
        if p.supported is False and VERSIONS[p.version] in enumerator.silenced:
            p.supported = None
            errors[Probe.suites(p.version)] = Attempt.failed(
                AttemptErrorReason.SERVER_STOPPED_ANSWERING, enumerator.counter.stopped
            )


def group_protocol(protocols: list[ProtocolSupport]) -> str | None:
    """The protocol groups are enumerated over: the highest one with an ECDHE (or TLS 1.3) suite."""
    return next(
        (
            p.version
            for p in reversed(protocols)
            if p.supported
            and p.version not in ("SSL 2.0", "SSL 3.0")
            and any(s.key_exchange in ("ECDHE", "TLS13") for s in p.suites)
        ),
        None,
    )


def enumerate_server(
    server: ServerConnectivityInfo,
    counter: ConnectionCounter,
    *,
    connections: int = 5,
    on_phase: Callable[[str], None] | None = None,
) -> Enumeration:
    """All protocols (concurrently, at most `connections` at once), then the groups."""
    enumerator = Enumerator(server, counter)
    result = Enumeration()
    if on_phase:
        on_phase("cipher suites")
    with ThreadPoolExecutor(max_workers=max(1, min(connections, len(VERSIONS)))) as pool:
        futures = {label: pool.submit(enumerator.protocol, label) for label in VERSIONS}
        for label, future in futures.items():
            try:
                result.protocols.append(future.result())
            except Exception as exc:  # noqa: BLE001  (a protocol we could not test is reported, never guessed)
                result.protocols.append(ProtocolSupport(version=label, supported=None))
                result.errors[f"suites {label}"] = f"{type(exc).__name__}: {exc}"[:300]
    if on_phase:
        on_phase("groups")
    try:
        result.groups = enumerator.groups(result.protocols)
    except Exception as exc:  # noqa: BLE001  (reported as not tested)
        result.errors["groups"] = f"{type(exc).__name__}: {exc}"[:300]
    return result
