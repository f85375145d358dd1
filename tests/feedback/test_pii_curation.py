"""The curation's residual-PII check catches what the intake missed: leaked cards, SSNs, IBANs, emails in SFT rows."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from core.datasets import DatasetRepository
from core.settings import PiiSettings
from core.types import DatasetKind, FeedbackEvent, FeedbackKind
from feedback.curation import CurationConfig, Curator
from feedback.pii_validators import validated_findings
from feedback.store import SqlStore

pytestmark = pytest.mark.integration

CLEAN = [
    ("How do I reset my password?", "Open the login page and follow the emailed reset link."),
    ("Where are my invoices?", "Invoices can be downloaded from the billing page every month."),
    ("How long does shipping take?", "Orders leave the warehouse within two business days."),
    ("Can I return an item?", "Unused items can be returned within thirty days of delivery."),
]
# Values the old scrubber let through (2-series Mastercard, 19-digit UnionPay, bare SSN, grouped IBAN) and an email.
LEAKED = {
    "2221 2914 1777 6311": ("Why was I charged twice?", "Refund the duplicate charge on card 2221 2914 1777 6311."),
    "6270669074391500089": ("Which card was used?", "The payment came from 6270669074391500089 last week."),
    "219099999": ("How do you verify identity?", "Identity was verified with SSN 219099999 on the call."),
    "GB82 WEST 1234 5698 7654 32": ("Where does the refund go?", "Refunds go to IBAN GB82 WEST 1234 5698 7654 32."),
    "jane.roe@example.org": ("Who asked for the invoice?", "Send the invoice copy to jane.roe@example.org please."),
}


def _curate(tmp_path: Path, make_query: Any, scrubber: Any, embedder: Any, passages: Any) -> tuple[Any, list[str]]:
    """Corrections (one per question) written straight to the store, bypassing intake; curate; SFT targets."""
    store = SqlStore(f"sqlite:///{tmp_path / 'fb.db'}")
    for i, (question, text) in enumerate([*CLEAN, *LEAKED.values()]):
        q = make_query(question=question, chunk_ids=["c1"], user_id="u1")
        store.record_query(q)
        event = FeedbackEvent(uuid.uuid4().hex, q.id, FeedbackKind.CORRECTION, {"text": text}, rater_id=f"a{i}")
        store.add_events([event], idempotency_keys=[None])
    repo = DatasetRepository(tmp_path / "datasets")
    config = CurationConfig(min_events=3, max_pii_share=0.9)
    report = Curator(store, repo, scrubber=scrubber, embedder=embedder, passages=passages, config=config).curate(
        "faq", holdout_share=0.01, seed=1
    )
    targets = [row.target for row in repo.read(DatasetKind.SFT)] if "sft" in report.written else []
    store.close()
    return report, targets


def test_when_intake_missed_cards_ssn_iban_email_then_curation_drops_and_counts_those_rows(
    tmp_path: Path, make_query: Any, scrubber: Any, embedder: Any, passage_index: Any
) -> None:
    report, targets = _curate(tmp_path, make_query, scrubber, embedder, passage_index)
    assert report.dropped["sft_residual_pii"] == len(LEAKED)
    assert len(targets) == len(CLEAN)
    assert not any(value in target for value in LEAKED for target in targets)


def test_when_the_scrubber_cannot_see_cards_at_all_then_validated_check_still_catches_them(
    tmp_path: Path, make_query: Any, embedder: Any, passage_index: Any
) -> None:
    """The intake's scrubber narrowed to names (``pii.entities=["PERSON"]``): the checksums catch the rest."""
    from feedback.pii import PresidioScrubber

    names_only = PresidioScrubber(PiiSettings(entities=["PERSON"]))
    report, targets = _curate(tmp_path, make_query, names_only, embedder, passage_index)
    assert report.dropped["sft_residual_pii"] == len(LEAKED)
    assert not any(value in target for value in LEAKED for target in targets)


VALIDATED = [
    ("card 4111 1111 1111 1111", {"CREDIT_CARD"}),
    ("card 2720 9912 3456 7891", set()),  # Luhn-invalid: an order number, not a card
    ("IBAN DE89370400440532013000", {"IBAN_CODE"}),
    ("IBAN DE89370400440532013001", set()),  # mod-97 fails
    ("SSN 078-05-1120", {"US_SSN"}),
    ("ticket 078051120", set()),  # nine bare digits without "SSN": not an SSN
    ("ssn: 078 05 1120", {"US_SSN"}),
    ("order 666-12-3456", set()),  # area 666 is never issued
    ("mail bob@example.co.uk", {"EMAIL_ADDRESS"}),
    ("edit pg_hba.conf and max_connections", set()),
]


@pytest.mark.unit
@pytest.mark.parametrize(("text", "entities"), VALIDATED, ids=[v[0] for v in VALIDATED])
def test_when_validated_scan_runs_then_only_checksum_valid_values_are_found(text: str, entities: set[str]) -> None:
    assert {f.entity_type for f in validated_findings(text)} == entities
