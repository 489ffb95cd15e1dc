"""Reference clients for the handshake simulation, as data.

Each profile is what that client puts in its ClientHello: highest protocol, TLS 1.3 suites,
TLS 1.2-and-below suites (OpenSSL names, in the client's order) and groups. Sources: the
ClientHello captures published with SSL Labs' client simulations (ssllabs.com/ssltest/clients.html)
and the clients' own documentation (Chromium's BoringSSL default list, Firefox/NSS defaults,
Apple's TLS defaults, the JDK's `jdk.tls` defaults, Android's Conscrypt, OpenSSL 3's DEFAULT).
They are abbreviated to the suites OpenSSL can offer; GREASE and post-quantum hybrid groups
(X25519MLKEM768), which nassl's OpenSSL cannot send, are left out of the nassl handshake. The hybrid a
browser offers by default is kept in `hybrid_key_shares` (the key shares of its real ClientHello, the
hybrid first, listed first in its groups too): auditor.scan.post_quantum sends that hello raw and records
which group the server picks for it (HandshakeSimulation.hybrid_selected).
`reference` marks the browsers SSL Labs judges forward secrecy, RC4 and 3DES by.
"""

from __future__ import annotations

from dataclasses import dataclass

_BROWSER_12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA"
)
_FIREFOX_12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
    "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA"
)
_SAFARI_12 = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:"
    "AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA:AES128-SHA:DES-CBC3-SHA"
)
_JAVA_12 = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
    "DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:"
    "AES128-SHA256:AES256-SHA:AES128-SHA"
)
_JAVA8_12 = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA:DES-CBC3-SHA"
)
_ANDROID7_12 = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:"
    "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA"
)
_OPENSSL3_12 = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:DHE-RSA-AES256-SHA256:ECDHE-ECDSA-AES128-SHA256:"
    "ECDHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
    "DHE-RSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-SHA:"
    "AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA"
)
_TLS13_CHROME = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
_TLS13_FIREFOX = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
_TLS13_SERVERLIKE = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
_TLS13_JAVA = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"


@dataclass(frozen=True)
class ClientProfile:
    name: str
    max_version: str  # "TLS 1.3" or "TLS 1.2"
    tls13_suites: str
    tls12_suites: str
    groups: tuple[str, ...]
    reference: bool  # one of the reference browsers of the rating
    source: str
    hybrid_key_shares: tuple[str, ...] = ()  # the real client's key shares when it offers a PQ hybrid


CLIENTS: list[ClientProfile] = [
    ClientProfile(
        "Chrome 131 / Win 11",
        "TLS 1.3",
        _TLS13_CHROME,
        _BROWSER_12,
        ("X25519", "P-256", "P-384"),
        True,
        "BoringSSL default ClientHello (Chromium 131), as captured by SSL Labs; X25519MLKEM768 key share "
        "by default since Chrome 131 (Google security blog, 'A new path for Kyber on the web', 2024)",
        ("X25519MLKEM768", "X25519"),
    ),
    ClientProfile(
        "Edge 131 / Win 11",
        "TLS 1.3",
        _TLS13_CHROME,
        _BROWSER_12,
        ("X25519", "P-256", "P-384"),
        True,
        "Chromium-based: same ClientHello as Chrome",
        ("X25519MLKEM768", "X25519"),
    ),
    ClientProfile(
        "Firefox 133 / Win 11",
        "TLS 1.3",
        _TLS13_FIREFOX,
        _FIREFOX_12,
        ("X25519", "P-256", "P-384", "P-521"),
        True,
        "NSS defaults in Firefox 133 (security.ssl3.*); "
        "mlkem768x25519 offered by default on desktop since Firefox 132 (security.tls.enable_kyber)",
        ("X25519MLKEM768", "X25519", "P-256"),
    ),
    ClientProfile(
        "Safari 18 / macOS 15",
        "TLS 1.3",
        _TLS13_SERVERLIKE,
        _SAFARI_12,
        ("X25519", "P-256", "P-384", "P-521"),
        True,
        "Apple Secure Transport/Network.framework defaults",
    ),
    ClientProfile(
        "Android 14",
        "TLS 1.3",
        _TLS13_CHROME,
        _BROWSER_12,
        ("X25519", "P-256", "P-384"),
        True,
        "Conscrypt (BoringSSL) defaults on Android 14",
    ),
    ClientProfile(
        "Java 21",
        "TLS 1.3",
        _TLS13_JAVA,
        _JAVA_12,
        ("X25519", "P-256", "P-384", "P-521", "X448"),
        False,
        "JDK 21 jdk.tls default cipher suites and named groups",
    ),
    ClientProfile(
        "Java 17",
        "TLS 1.3",
        _TLS13_JAVA,
        _JAVA_12,
        ("X25519", "P-256", "P-384", "P-521", "X448"),
        False,
        "JDK 17 jdk.tls default cipher suites and named groups",
    ),
    ClientProfile(
        "OpenSSL 3.0",
        "TLS 1.3",
        _TLS13_SERVERLIKE,
        _OPENSSL3_12,
        ("X25519", "P-256", "X448", "P-521", "P-384"),
        False,
        "OpenSSL 3.0 DEFAULT cipher list and groups",
    ),
    ClientProfile(
        "Java 8u161",
        "TLS 1.2",
        "",
        _JAVA8_12,
        ("P-256", "P-384", "P-521"),
        False,
        "JDK 8u161 default suites (SSL Labs 'Java 8u161')",
    ),
    ClientProfile(
        "Android 7.0",
        "TLS 1.2",
        "",
        _ANDROID7_12,
        ("X25519", "P-256", "P-384"),
        False,
        "Android 7.0 (BoringSSL) default ClientHello, SSL Labs capture",
    ),
]
