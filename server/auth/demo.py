"""The data access part of ``genomeport demo``: a controlled dataset with
data-use conditions, a DAC member, a pending application, and the development
issuer to sign in with, so the whole cycle can be tried at once on the pages
(``/portal``) or the ``/access`` API.

The issuer (``server.auth.issuer``, no passwords: development only) runs in
the demo's own process on ``DEFAULT_ISSUER``'s port; when that port is taken
the demo says so and serves without it (and without sign-in).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from server.auth import Caller
from server.auth.issuer import DEFAULT_ISSUER, LocalIssuer

logger = logging.getLogger(__name__)

DATASET = "demo-controlled"
TERMS = ["DUO:0000007", "DUO:0000019"]
DAC, RESEARCHER, APPLICANT, OPERATOR = "dac", "researcher", "applicant", "operator"


def operators(issuer: LocalIssuer) -> tuple[str, ...]:
    """The demo's operator, who sees every grant on the pages."""
    return (f"{issuer.issuer}|{OPERATOR}",)


def start_issuer(settings):
    """The development issuer, serving in a thread, or None when its port is taken."""
    issuer = LocalIssuer.for_settings(settings, DEFAULT_ISSUER)
    try:
        server = issuer.start()
    except OSError as exc:
        logger.warning("development issuer not started on %s: %s", DEFAULT_ISSUER, exc)
        return issuer, None
    return issuer, server


def setup(db, issuer: LocalIssuer, bam) -> None:
    """Idempotent: the dataset, its terms, the DAC member, one pending application."""
    from server.auth.access import apply, set_terms
    from server.auth.roles import add_role
    from server.auth.tables import AccessApplication, AccessTerms
    from server.registry import add_dataset, add_files

    add_dataset(
        db,
        DATASET,
        access="controlled",
        name="genomeport demo cohort (controlled)",
        assembly="GPDEMO1",
        description="One genome of the demo cohort behind a data access committee",
    )
    if bam is not None:
        add_files(
            db, [bam], DATASET, object_id=f"{bam.name.split('.')[0]}-controlled", progress=False
        )
    with db.session() as session:
        has_terms = session.get(AccessTerms, DATASET) is not None
        pending = session.scalar(
            sa.select(sa.func.count())
            .select_from(AccessApplication)
            .where(AccessApplication.dataset_id == DATASET)
        )
    if not has_terms:
        set_terms(db, DATASET, TERMS, "Disease-specific research only; results must be published.")
    add_role(db, DATASET, "dac", DAC, issuer.issuer)
    for user in (DAC, RESEARCHER, APPLICANT, OPERATOR):
        issuer.set_user(user, registered=True)
    if not pending:
        applicant = Caller(
            subject=f"{issuer.issuer}|{APPLICANT}", issuer=issuer.issuer, registered=True
        )
        apply(
            db,
            None,
            applicant,
            {
                "dataset": DATASET,
                "title": "Variant burden in inherited cardiomyopathy",
                "purpose": ["DUO:0000007"],
                "institution": "Demo University Hospital",
                "accepted_terms": TERMS,
            },
        )


def lines(base: str, issuer: LocalIssuer, serving: bool) -> list[str]:
    if not serving:
        return [f"(the development issuer could not start on {issuer.issuer}: no sign-in)"]
    return [
        f"Data access: open {base}/portal and sign in (development issuer, no password) as",
        f"  '{RESEARCHER}' to apply for '{DATASET}', or as '{DAC}', its data access committee,",
        f"  to decide the pending application of '{APPLICANT}', or as '{OPERATOR}' to see"
        " every grant.",
    ]
