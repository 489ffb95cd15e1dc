"""config.toml: targets, the policy's thresholds (defaults = the published policy), scan limits.

Loading never raises anything but ConfigError, whose message is one line per problem naming the
file and the key, so a typo never shows a user a traceback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditor.config_errors import explain, target_label
from auditor.cron import cron_problem
from auditor.errors import ConfigError
from auditor.protocol_names import LEGACY_PROTOCOLS, PROTOCOL_VERSIONS
from auditor.targets import TargetError, parse_url

PROTOCOLS = PROTOCOL_VERSIONS  # the names a protocol list in the config may use
TRUST_STORES = ("Mozilla", "Apple", "Android", "Java", "Windows")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Policy(_Section):
    """Thresholds of the policy's promises; each default is the policy's own value."""

    renewal_days: int = Field(30, ge=0, description="11.2-cert-renewal: minimum days left on the leaf")
    renewal_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="11.2-cert-renewal: alternatively, the fraction of the lifetime that must remain "
        "(e.g. 0.33 like certbot); when set, it replaces renewal_days",
    )
    hsts_min_age: int = Field(31536000, ge=0, description="11.5-hsts: warn below this max-age")
    hsts_fail_below: int = Field(15768000, ge=0, description="11.5-hsts: fail below this max-age")
    required_protocols: list[str] = Field(["TLS 1.2", "TLS 1.3"])
    forbidden_protocols: list[str] = Field(list(LEGACY_PROTOCOLS))
    validation_levels: list[Literal["DV", "OV", "EV"]] = Field(["OV", "EV"])
    signature_hashes: list[str] = Field(["sha256", "sha384", "sha512"])
    trust_stores: list[str] = Field(
        list(TRUST_STORES), description="11.2-cert-trusted: stores that must trust the chain"
    )
    strong_groups: list[str] = Field(["X25519", "X448", "secp256r1", "secp384r1", "secp521r1"])
    minimum_grade: str = Field("A", description="11.4-grade-a")
    patch_window_hours: float = Field(
        24,
        gt=0,
        description="11.4-patch-window: hours a published TLS flaw may "
        "stay exposed after the auditor first saw it",
    )
    cookie_allowlist: list[str] = Field([], description="12.3-cookie-consent: cookies allowed before consent")
    require_post_quantum: bool = Field(
        False,
        description="11.3-quantum-resistance: fail (not warn) when no hybrid "
        "post-quantum group (X25519MLKEM768...) is accepted",
    )
    require_ocsp_stapling: bool = Field(
        False,
        description="11.2-cert-trusted: warn when the server does not staple an OCSP response "
        "(stapling is otherwise shown as a fact, not judged)",
    )

    @field_validator("required_protocols", "forbidden_protocols")
    @classmethod
    def _known_protocols(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in PROTOCOLS:
                raise ValueError(f"unknown protocol {item!r}; use one of {', '.join(PROTOCOLS)}")
        return value

    @field_validator("trust_stores")
    @classmethod
    def _known_stores(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in TRUST_STORES:
                raise ValueError(f"unknown trust store {item!r}; use one of {', '.join(TRUST_STORES)}")
        return value

    @model_validator(mode="after")
    def _ordered_hsts(self) -> Policy:
        if self.hsts_fail_below > self.hsts_min_age:
            raise ValueError(
                f"hsts_fail_below ({self.hsts_fail_below}) must not exceed hsts_min_age ({self.hsts_min_age})"
            )
        return self


class Scan(_Section):
    timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="wall-clock seconds for each connection (connect, handshake, every exchange)",
    )
    target_timeout: float = Field(300.0, gt=0, description="seconds for a whole target")
    concurrency: int = Field(4, ge=1, le=100, description="targets audited at once")
    connections_per_server: int = Field(5, ge=1, le=50, description="parallel TLS connections to one server")
    pace: float = Field(
        0.0,
        ge=0,
        le=60,
        description="seconds at least between two new connections to one server "
        "(with connections_per_server = 1, for servers that rate-limit)",
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="HTTP body bytes read per page")
    thorough: bool = Field(False, description="enumerate suites with sslyze's one-connection-per-suite scan")
    ocsp: bool = Field(
        True,
        description="ask the OCSP responder each certificate names (AIA) whether it is "
        "revoked; false for air-gapped runs (stapled responses are still read)",
    )


class Output(_Section):
    directory: Path = Field(Path("auditor-reports"), description="where reports are written")
    write_json: bool = Field(
        True, description="write audit-<time>.json and latest.json when auditing the config"
    )
    junit: Path | None = Field(
        None, description="also write JUnit XML here when auditing the config (relative: in directory)"
    )
    sarif: Path | None = Field(
        None, description="also write SARIF 2.1.0 here when auditing the config (relative: in directory)"
    )
    csv: Path | None = Field(
        None, description="also write CSV here when auditing the config (relative: in directory)"
    )


class Email(_Section):
    """[email]: where reports are mailed. The password is read from the environment variable
    named by `password_env`; it never appears in the config, logs or reports."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = Field(
        None, description="name of the environment variable holding the password"
    )
    sender: str = Field(..., alias="from")
    to: list[str] = Field(..., min_length=1)
    subject: str = Field(
        "[auditor] {target}: {grade}, {verdict}",
        description="placeholders: {target} {grade} {verdict} {violations}",
    )
    notify: Literal["always", "on-change", "on-failure"] = "always"
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(3, ge=0, le=10, description="further attempts after a failed send")
    backoff: float = Field(2.0, ge=0, description="seconds before the first retry; doubles each time")
    ca_bundle: Path | None = Field(
        None, description="PEM of a private CA that signed the mail server's certificate"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


DEFAULT_CRON = "0 2 * * *"  # every night at 02:00


class Schedule(_Section):
    """[schedule]: when `auditor schedule` runs the nightly audit."""

    cron: str = Field(
        DEFAULT_CRON,
        description="crontab: minute hour day month weekday (0 or 7 = Sunday, as in cron); "
        "6 fields: seconds first",
    )
    timezone: str = "Asia/Tokyo"
    misfire_grace_time: int = Field(6 * 3600, ge=1, description="seconds a missed run may still start late")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # the default needs no check: checking loads APScheduler (~50 ms before an audit's first handshake)
        if value != DEFAULT_CRON and (why := cron_problem(value)) is not None:
            raise ValueError(why)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Asia/Tokyo' or 'UTC'"
            ) from None
        return value


def parse_nameserver(text: str) -> tuple[str, int]:
    """A [dns] nameservers entry -> (address, port): '127.0.0.1:5353', '[::1]:53', '::1', '192.0.2.1'.
    ValueError for a name (resolving a name server would need a resolver) or a bad port."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{text!r} is not address:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(
            f"{text!r}: a name server is given by its IP address (e.g. 127.0.0.1:5353)"
        ) from None
    if not port_text:
        return address, 53
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: port {port_text!r} is not a port number (1-65535)")
    return address, int(port_text)


class Dns(_Section):
    """[dns]: where the addresses of each target's name come from, and what its CAA records must say."""

    nameservers: list[str] = Field(
        [],
        description="DNS servers to ask, address[:port] (e.g. 127.0.0.1:5353); empty: the system resolver",
    )
    require_caa: bool = Field(
        False, description="11.2-cert-trusted: warn when the name has no CAA record (RFC 8659)"
    )
    ca_identifiers: dict[str, list[str]] = Field(
        {},
        description="the CAA identifiers (issuer domains) of a CA, keyed by its certificates' issuer "
        "organization (O) or common name (CN), beside the built-in table of public CAs",
    )

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_nameserver(item)
        return value


def is_url(database: str) -> bool:
    """[history] database names a server (a SQLAlchemy URL) rather than a SQLite file."""
    return "://" in database


class History(_Section):
    """[history]: the scan history and hash-chained evidence log."""

    database: str = Field(
        "auditor-history.sqlite",
        description="SQLite file (relative to config.toml), or a SQLAlchemy URL (postgresql://...)",
    )
    retention_months: int = Field(24, ge=1)


class Target(_Section):
    url: str
    name: str | None = None
    ip: str | None = Field(None, description="connect to this address only (no DNS); keeps the URL's host")
    ips: list[str] = Field(
        [], description="audit these addresses (no DNS), each with the URL's host for SNI and Host"
    )
    ca_bundle: Path | None = None
    http_port: int = Field(80, ge=1, le=65535)
    paths: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            parse_url(value)
        except TargetError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("ip", "ips")
    @classmethod
    def _ip_addresses(cls, value: str | list[str] | None) -> str | list[str] | None:
        for item in [value] if isinstance(value, str) else value or []:
            try:
                ipaddress.ip_address(item.strip("[]"))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address") from None
        return value

    @model_validator(mode="after")
    def _ip_or_ips(self) -> Target:
        if self.ip is not None and self.ips:
            raise ValueError("give either ip or ips, not both")
        return self

    def addresses(self) -> list[str]:
        """The addresses to audit, as given (`ips`, else `ip`); empty: resolve the URL's host."""
        given = self.ips or ([self.ip] if self.ip else [])
        return list(dict.fromkeys(str(ipaddress.ip_address(a.strip("[]"))) for a in given))

    @field_validator("paths")
    @classmethod
    def _absolute_paths(cls, value: list[str]) -> list[str]:
        for p in value:
            if not p.startswith("/"):
                raise ValueError(f"path {p!r} must start with '/'")
        return value


class Fleet(_Section):
    """[fleet]: the nightly run spread over Celery workers (a broker switches fleet mode on)."""

    broker: str | None = Field(
        None, description="Celery broker URL (redis://host:6379/0); unset: the embedded mode (threads)"
    )
    run_deadline: float | None = Field(
        None,
        gt=0,
        description="seconds the scheduler waits for the workers; a target without a result by then is "
        "'not audited: worker lost' (default: visibility_timeout + target_timeout per concurrency's "
        "worth of targets)",
    )
    visibility_timeout: float | None = Field(
        None,
        gt=0,
        description="seconds after which a task taken by a worker that died is delivered again; must "
        "exceed the longest audit (default: 2 x scan.target_timeout)",
    )
    queue: str = Field(
        "auditor", min_length=1, description="the Celery queue the scheduler and workers share"
    )


class Serve(_Section):
    """[serve]: `auditor serve`, the read-only dashboard and /metrics."""

    bind: str = Field("127.0.0.1:8080", description="address:port; a non-loopback one needs access control")
    token_env: str | None = Field(
        None, description="name of the environment variable holding the access token (Bearer or ?token=)"
    )
    username: str | None = Field(None, description="HTTP basic auth user (with password_env)")
    password_env: str | None = Field(
        None, description="name of the environment variable holding the basic auth password"
    )
    verify_seconds: int = Field(
        60, ge=0, description="how long a verification of the evidence log is shown before it is redone"
    )

    @model_validator(mode="after")
    def _basic_auth_whole(self) -> Serve:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together (HTTP basic auth)")
        return self


class Metrics(_Section):
    """[metrics]: Prometheus metrics for cron users (the textfile collector)."""

    textfile: Path | None = Field(
        None,
        description="a .prom file in node_exporter's textfile directory, rewritten after every stored run",
    )

    @field_validator("textfile")
    @classmethod
    def _prom_file(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix != ".prom":
            raise ValueError(f"{str(value)!r}: node_exporter's textfile collector reads only *.prom files")
        if value is not None and not value.is_absolute():  # cron's working directory is nobody's choice
            raise ValueError(f"{str(value)!r}: give an absolute path (node_exporter's textfile directory)")
        return value


class Config(_Section):
    policy: Policy = Field(default_factory=Policy)
    scan: Scan = Field(default_factory=Scan)
    output: Output = Field(default_factory=Output)
    targets: list[Target] = Field(default_factory=list)
    email: Email | None = None
    schedule: Schedule = Field(default_factory=Schedule)
    history: History = Field(default_factory=History)
    dns: Dns = Field(default_factory=Dns)
    fleet: Fleet = Field(default_factory=Fleet)
    serve: Serve = Field(default_factory=Serve)
    metrics: Metrics = Field(default_factory=Metrics)


def check_ca_bundle(path: Path) -> str | None:
    """Why `path` cannot serve as a CA bundle, or None when it can."""
    # lazy: cryptography's x509 (~60 ms) only when a ca_bundle is given
    from cryptography.x509 import load_pem_x509_certificates

    if not path.is_file():
        return f"no such file {str(path)!r}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read {str(path)!r} ({exc.strerror})"
    try:
        if not load_pem_x509_certificates(data):
            raise ValueError
    except ValueError:
        return f"{str(path)!r} holds no PEM certificate"
    return None


def config_digest(path: Path | None) -> str | None:
    """sha256 of the config file, so a report says which configuration produced it."""
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_config(path: Path | None) -> Config:
    """Read and validate config.toml; None gives the policy defaults with no targets."""
    if path is None:
        return Config()
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(explain(exc, source, Config, data))) from None
    base = path.parent
    problems = []
    for i, target in enumerate(config.targets):
        if target.ca_bundle is not None:
            bundle = target.ca_bundle if target.ca_bundle.is_absolute() else base / target.ca_bundle
            target.ca_bundle = bundle
            if (why := check_ca_bundle(bundle)) is not None:
                problems.append(f"{source}: {target_label(i, data)}: ca_bundle: {why}")
    if not config.output.directory.is_absolute():
        config.output.directory = base / config.output.directory
    if config.email is not None and config.email.ca_bundle is not None:
        bundle = (
            config.email.ca_bundle if config.email.ca_bundle.is_absolute() else base / config.email.ca_bundle
        )
        config.email.ca_bundle = bundle
        if (why := check_ca_bundle(bundle)) is not None:
            problems.append(f"{source}: email.ca_bundle: {why}")
    if not is_url(config.history.database) and not Path(config.history.database).is_absolute():
        config.history.database = str(base / config.history.database)
    if problems:
        raise ConfigError("\n".join(problems))
    return config
