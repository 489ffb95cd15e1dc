"""Hybrid post-quantum key exchange with TLS 1.3 (clause 11.3-quantum-resistance).

No ML-KEM implementation is needed to see what a server does, only ClientHellos built by hand
(auditor.scan.raw_hello), each on one counted connection bounded by the scan's deadline:

- accepted: a hello offering only one hybrid group and no key share. A server that supports the
  group answers with a HelloRetryRequest naming it; one that does not refuses the handshake.
- preferred: the first accepted hybrid offered beside X25519 with a key share for each, as Chrome
  and Firefox send them. The server's ServerHello names the group it picked. The key shares are
  well-formed public keys (ML-KEM encapsulation keys with every coefficient below q, real EC
  points) whose secrets nobody keeps: the server's answer is read and the connection closed.
- retry_for_hybrid: the same groups with a key share for X25519 only. A server that still asks
  for the hybrid (HelloRetryRequest) upgrades clients that predicted only X25519. OpenSSL 3.5
  does that only when the hybrid sits in an earlier "/"-separated tuple of its groups list than
  X25519. With one tuple ("X25519MLKEM768:X25519") it takes the group it already has a share for.
  That is why `preferred` is judged on the browsers' own offer, with both key shares.
- browsers: the real ClientHello of each reference browser that offers a hybrid by default
  (auditor.clients: groups and key shares), to record which group the server gives that browser.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from functools import partial

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from auditor.clients import CLIENTS, ClientProfile
from auditor.model import Attempt, AttemptErrorReason, AttemptStatus, HandshakeSimulation, PostQuantum
from auditor.scan.attempts import from_exception
from auditor.scan.dh_size import Target, open_raw
from auditor.scan.ledger import ConnectionCounter, Unanswered
from auditor.scan.raw_hello import (
    SERVER_HELLO,
    TLS12,
    TLS13,
    HandshakeRefused,
    Hello,
    ServerHello,
    client_hello,
    handshake_messages,
    parse_server_hello,
)

PHASE = "post_quantum"
X25519MLKEM768, SECP256R1MLKEM768, SECP384R1MLKEM1024 = 0x11EC, 0x11EB, 0x11ED
# IANA TLS Supported Groups names, in the order they are tried (the one browsers send first).
HYBRIDS: dict[int, str] = {
    X25519MLKEM768: "X25519MLKEM768",
    SECP256R1MLKEM768: "SecP256r1MLKEM768",
    SECP384R1MLKEM1024: "SecP384r1MLKEM1024",
}
CLASSICAL: dict[int, str] = {
    0x001D: "X25519",
    0x001E: "X448",
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
}
_CODES = {
    **{name: code for code, name in {**HYBRIDS, **CLASSICAL}.items()},
    "P-256": 0x0017,
    "P-384": 0x0018,
    "P-521": 0x0019,
}
X25519 = 0x001D
TLS13_SUITES = (0x1301, 0x1302, 0x1303)
# What a browser offers for TLS 1.2 beside its TLS 1.3 suites (ECDHE with AES-GCM and ChaCha20).
_BROWSER_TLS12_SUITES = (0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8)
_ML_KEM_Q = 3329


def group_label(code: int | None) -> str | None:
    if code is None:
        return None
    return HYBRIDS.get(code) or CLASSICAL.get(code) or f"0x{code:04X}"


def _ml_kem_encapsulation_key(k: int) -> bytes:
    """A well-formed ML-KEM encapsulation key (FIPS 203: k*256 12-bit coefficients below q, then rho):
    it passes the server's modulus check. Its decapsulation key does not exist; none is needed."""
    out = bytearray()
    for _ in range(k * 128):
        a, b = secrets.randbelow(_ML_KEM_Q), secrets.randbelow(_ML_KEM_Q)
        out += bytes((a & 0xFF, (a >> 8) | ((b & 0x0F) << 4), b >> 4))
    return bytes(out) + os.urandom(32)


def _x25519() -> bytes:
    return (
        x25519.X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _ec_point(curve: ec.EllipticCurve) -> bytes:
    return (
        ec.generate_private_key(curve)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


# key_exchange of a client's KeyShareEntry per group (draft-ietf-tls-ecdhe-mlkem: ML-KEM first for
# X25519MLKEM768, the EC point first for the two NIST hybrids).
_SHARES: dict[int, Callable[[], bytes]] = {
    X25519MLKEM768: lambda: _ml_kem_encapsulation_key(3) + _x25519(),
    SECP256R1MLKEM768: lambda: _ec_point(ec.SECP256R1()) + _ml_kem_encapsulation_key(3),
    SECP384R1MLKEM1024: lambda: _ec_point(ec.SECP384R1()) + _ml_kem_encapsulation_key(4),
    X25519: _x25519,
    0x0017: lambda: _ec_point(ec.SECP256R1()),
    0x0018: lambda: _ec_point(ec.SECP384R1()),
    0x0019: lambda: _ec_point(ec.SECP521R1()),
}


class _NoAnswer(Exception):
    """No answer that proves anything (deadline, cut, unparseable): the question stays open."""

    def __init__(self, message: str, attempt: Attempt) -> None:
        super().__init__(message)
        self.attempt = attempt


def _ask(where: Target, hello: Hello, counter: ConnectionCounter | None) -> ServerHello | None:
    """The server's ServerHello (or HelloRetryRequest) for `hello`; None when it refused (an alert,
    a close or a reset before answering). Raises _NoAnswer when nothing could be told."""
    try:
        with open_raw(where, PHASE, counter) as sock:
            deadline = time.monotonic() + where.timeout  # from the connection, not the wait for a slot
            sock.sendall(client_hello(hello))
            for kind, body in handshake_messages(sock, deadline):
                if kind == SERVER_HELLO:
                    return parse_server_hello(body)
                why = f"handshake message {kind} before the ServerHello"
                raise _NoAnswer(why, Attempt.failed(AttemptErrorReason.MALFORMED_ANSWER, why))
    except HandshakeRefused as exc:
        if str(exc).startswith(("TLS alert", "the server closed")):
            return None
        raise _NoAnswer(str(exc), from_exception(exc)) from None
    except ConnectionResetError:
        return None
    except TimeoutError:
        why = f"no answer within {where.timeout:g} s"
        raise _NoAnswer(why, Attempt.failed(AttemptErrorReason.TIMEOUT, why)) from None
    except Unanswered as exc:
        raise _NoAnswer(
            f"not tested: {exc}", from_exception(exc, counter.stopped if counter else None)
        ) from None
    except OSError as exc:
        raise _NoAnswer(f"{type(exc).__name__}: {exc}", from_exception(exc)) from None
    why = "the server closed the connection"
    raise _NoAnswer(why, Attempt.failed(AttemptErrorReason.NO_ANSWER, why))


def _ask_twice(
    where: Target, hello: Callable[[], Hello], counter: ConnectionCounter | None
) -> ServerHello | None:
    """`_ask`, once more when the first attempt proved nothing (a hello is rebuilt: fresh key shares)."""
    try:
        return _ask(where, hello(), counter)
    except _NoAnswer:
        return _ask(where, hello(), counter)


def _tls13_hello(
    where: Target, groups: Sequence[int], shares: Sequence[int], *, browser: bool = False
) -> Hello:
    suites = (*TLS13_SUITES, *_BROWSER_TLS12_SUITES) if browser else TLS13_SUITES
    return Hello(
        suites=suites,
        server_name=where.server_name,
        groups=tuple(groups),
        key_shares={g: _SHARES[g]() for g in shares},
        supported_versions=(TLS13, TLS12) if browser else (TLS13,),
    )


def _accepted(
    where: Target, counter: ConnectionCounter | None, errors: list[str], failed: list[Attempt]
) -> dict[str, bool | None]:
    """Which hybrids the server accepts, as the suites are enumerated: every untested one offered in
    one hello without a key share; the server's HelloRetryRequest names the one it takes, which is
    removed before the next offer; a refusal answers for all the rest. One connection for a server
    without hybrids, one per accepted hybrid (+1 when some are left over)."""
    found: dict[int, bool | None] = {}
    remaining = list(HYBRIDS)
    while remaining:
        offer = list(remaining)
        try:
            answer = _ask_twice(where, partial(_tls13_hello, where, offer, []), counter)
        except _NoAnswer as exc:
            found.update(dict.fromkeys(offer))
            errors.append(f"{', '.join(HYBRIDS[code] for code in offer)}: {exc}")
            failed.append(exc.attempt)
            break
        if answer is None or answer.version != TLS13 or answer.group not in offer:
            found.update(dict.fromkeys(offer, False))
            break
        found[answer.group] = True
        remaining.remove(answer.group)
    return {name: found[code] for code, name in HYBRIDS.items()}


def _browser_hello(profile: ClientProfile, where: Target) -> Hello:
    """The profile's ClientHello with its hybrid: its key shares, its groups after the hybrid."""
    shares = [_CODES[name] for name in profile.hybrid_key_shares]
    groups = list(dict.fromkeys([shares[0], *(_CODES[g] for g in profile.groups if g in _CODES)]))
    return _tls13_hello(where, groups, shares, browser=True)


def probe_post_quantum(
    where: Target, counter: ConnectionCounter | None = None, clients: Sequence[ClientProfile] = CLIENTS
) -> tuple[PostQuantum, dict[str, str | None]]:
    """What the server does with hybrid groups over TLS 1.3 (call it only for a server that speaks
    TLS 1.3), and for each client of `clients` that offers a hybrid: the group the server picks
    for its real ClientHello (None: not measured). 1 connection for a server without hybrids, 6 for
    one with X25519MLKEM768 only (two per question at most when the first proves nothing), counted as
    "post_quantum"."""
    result, choices, _ = measure(where, counter, clients)
    return result, choices


def measure(
    where: Target, counter: ConnectionCounter | None = None, clients: Sequence[ClientProfile] = CLIENTS
) -> tuple[PostQuantum, dict[str, str | None], Attempt | None]:
    """`probe_post_quantum`, and its attempt (Probe.POST_QUANTUM): None when every question it asked
    got an answer; else the first unanswered one's reason, the `error` text as detail."""
    result = PostQuantum()
    errors: list[str] = []
    failed: list[Attempt] = []
    result.groups = _accepted(where, counter, errors, failed)
    choices: dict[str, str | None] = {}
    accepted = [code for code, name in HYBRIDS.items() if result.groups.get(name)]
    if accepted:
        first = accepted[0]
        try:
            beside = _ask_twice(where, lambda: _tls13_hello(where, [first, X25519], [first, X25519]), counter)
            result.chosen_beside_x25519 = group_label(beside.group) if beside else None
            result.preferred = beside is not None and beside.group in HYBRIDS
            if beside is None:
                errors.append(f"{HYBRIDS[first]} beside X25519 (both key shares): the handshake was refused")
        except _NoAnswer as exc:
            errors.append(f"{HYBRIDS[first]} beside X25519: {exc}")
            failed.append(exc.attempt)
        try:
            retry = _ask_twice(where, lambda: _tls13_hello(where, [first, X25519], [X25519]), counter)
            result.retry_for_hybrid = retry is not None and retry.retry and retry.group in HYBRIDS
        except _NoAnswer as exc:
            errors.append(f"{HYBRIDS[first]} beside an X25519 key share only: {exc}")
            failed.append(exc.attempt)
    measured: dict[tuple[int, ...], str | None] = {}
    for profile in clients:
        if not profile.hybrid_key_shares:
            continue
        hybrid = profile.hybrid_key_shares[0]
        if result.groups.get(hybrid) is not True:
            choices[profile.name] = None  # refused or not tested: the nassl simulation's group stands
            continue
        hello = _browser_hello(profile, where)
        key = (*hello.groups, -1, *hello.key_shares)
        if key not in measured:
            try:
                answer = _ask_twice(where, partial(_browser_hello, profile, where), counter)
                measured[key] = group_label(answer.group) if answer is not None else None
            except _NoAnswer as exc:
                measured[key] = None
                errors.append(f"{profile.name}'s ClientHello: {exc}")
                failed.append(exc.attempt)
        choices[profile.name] = measured[key]
    result.error = "; ".join(errors) or None
    reason = failed[0].reason if failed else None
    return result, choices, Attempt.failed(reason, result.error or "") if reason else None


def without_tls13() -> PostQuantum:
    """A server that refuses TLS 1.3 has no hybrid group: nothing to ask it."""
    return PostQuantum(groups=dict.fromkeys(HYBRIDS.values(), False))


def annotate(
    simulations: list[HandshakeSimulation],
    result: PostQuantum | None,
    choices: dict[str, str | None],
    clients: Sequence[ClientProfile] = CLIENTS,
) -> None:
    """Record, in place, the hybrid each simulated browser offers and the group the server picks for it.

    Measured by a raw hello when the server accepts the browser's hybrid; when it refuses the hybrid,
    the browser falls back to the rest of its offer, which is what the nassl simulation sent: its group."""
    if result is None:
        return
    profiles = {p.name: p for p in clients}
    for sim in simulations:
        profile = profiles.get(sim.client)
        if profile is None or not profile.hybrid_key_shares:
            continue
        hybrid = profile.hybrid_key_shares[0]
        sim.hybrid_offered = hybrid
        if result.groups.get(hybrid) is False:
            sim.hybrid_selected = sim.suite.ephemeral_group if sim.suite is not None else None
        else:
            sim.hybrid_selected = choices.get(sim.client)


def probe_if_tls13(
    where: Target, counter: ConnectionCounter | None, tls13: bool | None
) -> tuple[PostQuantum, dict[str, str | None], Attempt | None]:
    """`probe_post_quantum` for a server that speaks TLS 1.3 (`tls13` True); without TLS 1.3 no
    hybrid can be accepted; None (TLS 1.3 untested) leaves the question open. Never raises: a
    failure is recorded in PostQuantum.error and typed in the attempt, and the rest of the scan goes on."""
    if tls13 is False:
        return without_tls13(), {}, None
    if tls13 is None:
        why = "TLS 1.3 could not be tested"
        return PostQuantum(error=why), {}, Attempt(status=AttemptStatus.NOT_SCHEDULED, detail=why)
    try:
        return measure(where, counter)
    except Exception as exc:  # noqa: BLE001  (a probe bug or an unforeseen answer must not cost the other phases)
        return PostQuantum(error=f"{type(exc).__name__}: {exc}"[:300]), {}, from_exception(exc)
