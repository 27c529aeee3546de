"""`make lint` fails on known vulnerabilities and warns, never passes silently, when unaudited.

The reports are made by pip-audit's own JSON formatter from its own result types, so the
verdict is tested against the exact shape pip-audit prints; only the vulnerability service
(PyPI, outside this machine) is stood in for.
"""

from __future__ import annotations

import json

from packaging.version import Version
from pip_audit._format.json import JsonFormat
from pip_audit._service.interface import (
    ResolvedDependency,
    SkippedDependency,
    VulnerabilityResult,
)

from scripts.audit import installed_closure, verdict


def report(results: dict) -> dict:
    return json.loads(JsonFormat(output_desc=False, output_aliases=False).format(results, []))


def vulnerability(vid: str, fixed: str) -> VulnerabilityResult:
    return VulnerabilityResult(id=vid, description="", fix_versions=[Version(fixed)], aliases=set())


def test_a_known_vulnerability_fails_with_package_id_and_fix():
    code, message = verdict(
        report(
            {
                ResolvedDependency("django", Version("5.2.0")): [
                    vulnerability("PYSEC-2025-1", "5.2.1")
                ],
                ResolvedDependency("stripe", Version("16.1.0")): [],
            }
        )
    )

    assert code == 1
    assert "django 5.2.0: PYSEC-2025-1 (fixed in 5.2.1)" in message


def test_a_clean_audit_passes():
    code, message = verdict(report({ResolvedDependency("django", Version("5.2.19")): []}))

    assert (code, message) == (0, "pip-audit: no known vulnerabilities in 1 packages.")


def test_an_unreachable_service_warns_loudly_instead_of_passing_silently():
    skipped = SkippedDependency(
        "django", "Dependency not found on PyPI and could not be audited: django (5.2.19)"
    )

    code, message = verdict(report({skipped: []}))

    assert code == 0
    assert message.startswith("WARNING")
    assert "NOT AUDITED" in message


def test_a_vulnerability_fails_even_when_other_packages_were_not_audited():
    code, _ = verdict(
        report(
            {
                SkippedDependency("honcho", "not found"): [],
                ResolvedDependency("django", Version("5.2.0")): [vulnerability("GHSA-x", "5.2.1")],
            }
        )
    )

    assert code == 1


def test_the_audit_covers_the_pins_and_what_they_pull_in(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nDjango==5.2.19\nsentry-sdk==2.75.0  # errors\n")

    closure = installed_closure(requirements)

    assert closure["django"] == "5.2.19"
    assert {"asgiref", "sqlparse", "urllib3", "certifi"} <= set(closure)
    assert "pytest" not in closure
