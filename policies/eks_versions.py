"""When each EKS Kubernetes version leaves standard support: the dated table the pack checks.

A minor version has 14 months of standard support from its EKS release, then 12 months of
extended support billed per cluster hour
(https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html, release calendar;
the dates below as https://endoflife.date/amazon-eks tabulates that calendar). Add a row when
EKS releases a version; the policy refuses a version missing here, so a new one cannot slip
past unchecked.

1.36: available on EKS (docs.aws.amazon.com/eks/latest/userguide/
kubernetes-versions-standard.html, "Kubernetes 1.36 is now available in Amazon EKS"); EKS
release on 2026-06-02 and end of standard support on 2027-08-02 (14 months), as reported at
devopsdreams.blogspot.com/2026/08/kubernetes-136-on-amazon-eks-upgrade.html; check against
`aws eks describe-cluster-versions --cluster-versions 1.36` (its endOfStandardSupportDate).
"""

from __future__ import annotations

from datetime import date
from typing import Final

# version: (EKS release, end of standard support)
STANDARD_SUPPORT: Final[dict[str, tuple[date, date]]] = {
    "1.31": (date(2024, 9, 26), date(2025, 11, 26)),
    "1.32": (date(2025, 1, 25), date(2026, 3, 23)),
    "1.33": (date(2025, 5, 28), date(2026, 7, 29)),
    "1.34": (date(2025, 10, 6), date(2026, 12, 2)),
    "1.35": (date(2026, 1, 28), date(2027, 3, 27)),
    "1.36": (date(2026, 6, 2), date(2027, 8, 2)),
}


def end_of_standard_support(version: str) -> date | None:
    entry = STANDARD_SUPPORT.get(version)
    return entry[1] if entry else None


def in_standard_support(version: str, on: date) -> list[str]:
    """The versions in standard support on a date, oldest first (for messages)."""
    return [v for v, (released, end) in STANDARD_SUPPORT.items() if released <= on < end]
