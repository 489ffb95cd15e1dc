"""Mozilla's server-side TLS guidelines (modern, intermediate) judged from the scan.

Unit tests on built evidence, then the oracle: on three real nginx configurations (modern-style,
intermediate-style, old-style) our deviations equal those of sslyze's own checker, run for real as
`python -m sslyze`, judged on the same guideline version: sslyze's bundled 5.7 (`--mozilla_config`)
against our judgement with that very file, and our bundled 6.0 (given to sslyze as
`--custom_tls_config`). What only one side judges is left out of the comparison, by name:
sslyze's Extended Master Secret (not measured here), our HSTS max-age and OCSP stapling (sslyze
leaves both out).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
import sslyze

from auditor.model import (
    Evidence,
    MozillaConformance,
    PostQuantum,
    RevocationStatus,
    Vulnerabilities,
)
from auditor.mozilla_profile import GUIDELINE, gate, judge, judge_all, load_guideline
from tests import evidence_builders as b
from tests.conftest import ROOT, audit_local_targets, run_cli
from tests.harness.pki import TestPKI
from tests.harness.servers import NginxSite

SSLYZE_GUIDELINE = Path(sslyze.__file__).parent / "mozilla_tls_profile" / "5.7.json"
ONLY_SSLYZE = {"tls_vulnerability_extended_master_secret"}
ONLY_OURS = {"hsts_min_age", "ocsp_staple"}


def keys(conformance: MozillaConformance) -> set[str]:
    return {d.key for d in conformance.deviations}


def verified(ev: Evidence) -> Evidence:
    """The builders' deployment with its chain validated (as the scan records a trusted chain) and
    its OCSP response stapled."""
    for deployment in ev.tls.certificates:
        deployment.verified_chain = list(deployment.received_chain)
        deployment.ocsp_stapled = True
    return ev


# ------------------------------------------------------------------ the data


def test_the_bundled_guideline_is_mozillas_6_0() -> None:
    guideline = load_guideline()
    assert guideline.label == "6.0" and guideline.href.endswith("/guidelines/6.0.json")
    assert set(guideline.configurations) == {"modern", "intermediate"}
    assert guideline.configurations["intermediate"].tls_curves[0] == "X25519MLKEM768"
    assert json.loads(GUIDELINE.read_text())["version"] == 6.0


# ------------------------------------------------------------------ the judgement


def test_a_policy_compliant_site_conforms_to_intermediate_not_modern() -> None:
    ev = verified(b.evidence())
    intermediate, modern = judge_all(ev)
    assert (intermediate.profile, intermediate.conformant, intermediate.deviations) == (
        "intermediate",
        True,
        [],
    )
    assert modern.conformant is False
    assert keys(modern) == {"tls_versions", "ciphers", "certificate_types", "certificate_signatures"}


def test_old_protocols_static_rsa_and_weak_groups_deviate() -> None:
    tls = b.tls(
        {
            "TLS 1.0": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"],
            "TLS 1.2": [*b.MODERN_12, "TLS_RSA_WITH_AES_256_GCM_SHA384"],
            "TLS 1.3": b.MODERN_13,
        }
    )
    tls.groups = ["X25519", "secp256r1", "secp224r1"]
    found = judge(verified(b.evidence(tls)), "intermediate")
    assert keys(found) == {"tls_versions", "ciphers", "tls_curves"}
    assert "TLS_RSA_WITH_AES_256_GCM_SHA384" in next(d.detail for d in found.deviations if d.key == "ciphers")


def test_certificate_lifetime_hsts_and_flaws() -> None:
    long_lived = b.cert(lifetime=400, days_left=200)
    tls = b.tls(
        deployments=[b.deployment([long_lived, b.cert("CN=Intermediate", issuer="CN=Root")])],
        vulns=Vulnerabilities(
            heartbleed=False,
            ccs_injection=False,
            robot="VULNERABLE_STRONG_ORACLE",
            secure_renegotiation=False,
            client_renegotiation_dos=False,
            compression=False,
            fallback_scsv=False,
        ),
    )
    page = b.page(headers=[("Strict-Transport-Security", "max-age=31536000")])
    found = judge(verified(b.evidence(tls, b.http(page))), "intermediate")
    assert keys(found) == {
        "maximum_certificate_lifespan",
        "hsts_min_age",
        "tls_vulnerability_robot",
        "tls_vulnerability_renegotiation",
        "tls_vulnerability_fallback_scsv",
    }
    tls.certificates[0].verified_chain = []
    assert "certificate_path_validation" in keys(judge(b.evidence(tls, b.http(page)), "intermediate"))


def test_ocsp_stapling_is_asked_only_of_a_certificate_that_names_a_responder() -> None:
    ev = verified(b.evidence())
    deployment = ev.tls.certificates[0]
    deployment.ocsp_stapled = False
    deployment.revocation = [
        RevocationStatus(source="responder", status="good", responder="http://ocsp.test/")
    ]
    assert keys(judge(ev, "intermediate")) == {"ocsp_staple"}
    deployment.revocation = [
        RevocationStatus(
            source="responder", status="not_checked", reason="the certificate names no OCSP responder"
        )
    ]
    found = judge(ev, "intermediate")
    assert found.conformant is True and any("nothing to staple" in a for a in found.advice)
    deployment.ocsp_stapled = True
    deployment.revocation = []
    assert judge(ev, "intermediate").conformant is True


def test_the_hybrid_group_is_allowed_by_6_0_and_not_by_5_7() -> None:
    """X25519MLKEM768 entered Mozilla's group list in 5.8: a server accepting it deviates from 5.7."""
    ev = verified(b.evidence())
    ev.tls.post_quantum = PostQuantum(groups={"X25519MLKEM768": True}, preferred=True)
    assert judge(ev, "intermediate").conformant is True
    old = judge(ev, "intermediate", load_guideline(SSLYZE_GUIDELINE))
    assert old.guideline_version == "5.7" and keys(old) == {"tls_curves"}
    ev.tls.post_quantum = PostQuantum(groups={"X25519MLKEM768": False})
    assert any("X25519MLKEM768" in a for a in judge(ev, "intermediate").advice)


def test_what_was_not_measured_is_never_conformant() -> None:
    ev = verified(b.evidence())
    ev.tls.protocols[2].supported = None  # TLS 1.0 untested
    ev.tls.vulnerabilities.heartbleed = None
    found = judge(ev, "intermediate")
    assert found.conformant is None and found.deviations == []
    assert any("TLS 1.0 not tested" in n for n in found.not_judged)
    assert any(n.startswith("heartbleed") for n in found.not_judged)


def test_the_gate_names_each_target_that_does_not_conform() -> None:
    from datetime import datetime

    from auditor.model import TargetRef, TargetResult

    def result(url: str, ev: Evidence | None, error: str | None = None) -> TargetResult:
        return TargetResult(
            target=TargetRef(url=url, host="good.test", port=443),
            started_at=datetime.now(UTC),
            duration_s=1,
            compliant=True,
            evidence=ev,
            error=error,
            mozilla=judge_all(ev),
        )

    ev = verified(b.evidence())
    results = [result("https://a.test/", ev), result("https://dead.test/", None, "connection refused")]
    assert gate(results, "intermediate") == []
    assert gate(results, "modern") == [
        (
            "https://a.test/: Mozilla modern 6.0: 4 deviation(s): certificate_types, "
            "certificate_signatures, tls_versions, ciphers"
        )
    ]


# ------------------------------------------------------------------ real servers, sslyze as the oracle

OLD_CIPHERS = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA:DES-CBC3-SHA"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    """Three nginx sites, one real `auditor audit` over them; yields (name, url, port, report target)."""
    directory = tmp_path_factory.mktemp("mozilla")
    pki = TestPKI(directory / "pki")
    sites = {
        "modern-style": NginxSite(
            directory / "modern", issued=pki.issue("moz-modern", key="p256"), protocols="TLSv1.3"
        ),
        "intermediate-style": NginxSite(directory / "intermediate", issued=pki.issue("moz-intermediate")),
        "old-style": NginxSite(
            directory / "old",
            issued=pki.issue("moz-old", days_valid=400),
            protocols="TLSv1 TLSv1.1 TLSv1.2",
            ciphers=OLD_CIPHERS,
            seclevel0=True,
            ecdh_curve="X25519:prime256v1:secp384r1:secp521r1",
            hsts="max-age=300",
        ),
    }
    for site in sites.values():
        site.start()
    try:
        run = audit_local_targets(
            {name: (site.url, pki.root_path) for name, site in sites.items()}, directory
        )
        assert run.code in (0, 1), run.stderr
        targets = {t["target"]["name"]: t for t in run.report["targets"]}
        yield pki, {name: (site, targets[name]) for name, site in sites.items()}, directory
    finally:
        for site in sites.values():
            site.stop()


def _sslyze(pki: TestPKI, port: int, *config: str) -> set[str]:
    """The issue keys `python -m sslyze` prints for this server (none when compliant)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslyze",
            *config,
            "--certinfo_ca_file",
            str(pki.root_path),
            f"good.test:{port}{{127.0.0.1}}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONWARNINGS": "ignore", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    section = proc.stdout.split("COMPLIANCE AGAINST TLS CONFIGURATION", 1)
    assert len(section) == 2 and "ERROR - Scan did not run" not in section[1], (
        proc.stdout[-2000:] + proc.stderr
    )
    verdict_ok = "OK - Compliant." in section[1]
    assert proc.returncode == (0 if verdict_ok else 1)
    found = {
        line.strip()[2:].split(":", 1)[0] for line in section[1].splitlines() if line.strip().startswith("* ")
    }
    assert verdict_ok != bool(found)
    return found


def _custom_config(directory: Path, profile: str) -> Path:
    """Our 6.0 configuration in the shape sslyze's --custom_tls_config reads (it also wants the
    caddy and go cipher lists, which 6.0 dropped; their content is never judged)."""
    data = json.loads(GUIDELINE.read_text())["configurations"][profile]
    data["ciphers"] = {"caddy": [], "go": [], **data["ciphers"]}
    path = directory / f"mozilla-6.0-{profile}.json"
    path.write_text(json.dumps(data))
    return path


# The deviations each configuration is expected to show, so that agreement cannot come from two empty answers.
EXPECTED = {
    ("modern-style", "intermediate"): set(),
    ("modern-style", "modern"): set(),
    ("intermediate-style", "intermediate"): set(),
    ("intermediate-style", "modern"): {"tls_versions", "ciphers", "certificate_types"},
    ("old-style", "intermediate"): {"tls_versions", "ciphers", "tls_curves", "maximum_certificate_lifespan"},
    ("old-style", "modern"): {
        "tls_versions",
        "ciphers",
        "tls_curves",
        "maximum_certificate_lifespan",
        "certificate_types",
    },
}


@pytest.mark.parametrize("version", ["5.7", "6.0"])
@pytest.mark.parametrize(("name", "profile"), list(EXPECTED))
def test_our_deviations_equal_sslyzes(harness, name: str, profile: str, version: str) -> None:
    pki, sites, directory = harness
    site, target = sites[name]
    evidence = Evidence.model_validate(target["evidence"])
    if version == "5.7":
        ours = judge(evidence, profile, load_guideline(SSLYZE_GUIDELINE))
        theirs = _sslyze(pki, site.https_port, f"--mozilla_config={profile}")
    else:
        ours = judge(evidence, profile)
        reported = next(
            c for c in target["mozilla"] if c["profile"] == profile
        )  # what the audit itself reported
        assert {d["key"] for d in reported["deviations"]} == keys(ours)
        theirs = _sslyze(pki, site.https_port, f"--custom_tls_config={_custom_config(directory, profile)}")
    assert ours.guideline_version == version
    assert keys(ours) - ONLY_OURS == theirs - ONLY_SSLYZE == EXPECTED[(name, profile)]


def test_hsts_and_stapling_are_judged_beyond_sslyze(harness) -> None:
    _, sites, _ = harness
    old = next(c for c in sites["old-style"][1]["mozilla"] if c["profile"] == "intermediate")
    assert "hsts_min_age" in {d["key"] for d in old["deviations"]}  # max-age=300
    modern = next(c for c in sites["modern-style"][1]["mozilla"] if c["profile"] == "modern")
    assert modern["conformant"] is True  # no OCSP responder in the test PKI: nothing to staple (advice)
    assert any("nothing to staple" in a for a in modern["advice"])


# ------------------------------------------------------------------ the gate


def test_mozilla_profile_flag_fails_the_run_on_deviations(tmp_path: Path, pki: TestPKI) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("moz-gate", key="p256")) as site:
        args = (
            "audit",
            site.url,
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--quiet",
        )
        intermediate = run_cli(*args, "--mozilla-profile", "intermediate")
        modern = run_cli(*args, "--mozilla-profile", "modern")
        plain = run_cli(*args)
    # 11.3-quantum-resistance only warns: the policy verdict is compliant, so the gate alone decides
    assert intermediate.code == 0, intermediate.stderr
    assert modern.code == 1, modern.stderr
    assert (
        "--mozilla-profile: https://good.test:" in modern.stderr and "tls_versions, ciphers" in modern.stderr
    )
    assert plain.code == 0, plain.stderr


def test_the_json_and_text_reports_carry_the_section(tmp_path: Path, pki: TestPKI) -> None:
    with NginxSite(tmp_path / "site", issued=pki.issue("moz-json")) as site:
        run = run_cli(
            "audit",
            site.url,
            "--ip",
            "127.0.0.1",
            "--ca-bundle",
            str(pki.root_path),
            "--http-port",
            "9",
            "--json",
            "-",
        )
    [target] = run.report["targets"]
    assert [c["profile"] for c in target["mozilla"]] == ["intermediate", "modern"]
    assert all(c["guideline_version"] == "6.0" for c in target["mozilla"])
    from auditor.model import AuditReport
    from auditor.reports.text import render_text

    text = render_text(AuditReport.model_validate(run.report))
    assert "Mozilla intermediate 6.0: conformant" in text
    assert (
        "Mozilla modern 6.0: 3 deviation(s)" in text and "  - tls_versions: TLS versions ['TLSv1.2']" in text
    )
