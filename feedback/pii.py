"""PII scrubbing with Presidio (analyzer + anonymizer) on the packaged small spaCy model.

Contract: :class:`PresidioScrubber` implements :class:`core.ports.PiiScrubber`. The NLP engine is built from an explicit
``NlpEngineProvider`` configuration naming ``settings.spacy_model`` (never Presidio's default engine, which downloads
``en_core_web_lg``) and loaded once per scrubber. Every detected entity is replaced by ``<ENTITY_TYPE>``. The analyzer
and anonymizer are stateless after construction, so one scrubber may be shared across threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from core.coalesce import Coalescer
from core.errors import InvalidInputError, UpstreamUnavailableError
from core.ports import PiiFinding, ScrubResult
from core.runtime import ensure_offline
from core.settings import PiiSettings
from feedback.pii_refine import ALLOW_LIST, refine

logger = logging.getLogger(__name__)

#: Characters of text one scrub round analyses at most (~0.5 s of spaCy on 2 cores); a longer text runs alone.
_ROUND_CHARS = 4_000


# Presidio's DEBUG/INFO records quote the analysed text (raw PII) and its start-up WARNINGs list every recognizer of
# other languages: keep these loggers at ERROR whatever the root level.
_PRESIDIO_LOGGERS = ("presidio-analyzer", "presidio-anonymizer", "tldextract")


def _silence_presidio_logs() -> None:
    for name in _PRESIDIO_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _build_analyzer(settings: PiiSettings) -> Any:
    """Analyzer on an explicitly configured spaCy engine (no hidden model download)."""
    ensure_offline()
    _silence_presidio_logs()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": settings.language, "model_name": settings.spacy_model}],
    }
    try:
        nlp_engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    except OSError as exc:  # spaCy raises OSError for a model package that is not installed
        raise UpstreamUnavailableError(f"spaCy model {settings.spacy_model!r} is not installed") from exc
    # Presidio reads tokens, lemmas and entities; the dependency parser costs ~15% of the pipeline and feeds none.
    for pipeline in getattr(nlp_engine, "nlp", {}).values():  # SpacyNlpEngine: lang_code -> spacy.Language
        if "parser" in pipeline.pipe_names:
            pipeline.disable_pipe("parser")
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[settings.language])
    _install_recognizers(analyzer, settings.language)
    return analyzer


# Presidio's stock recognizers replaced by the validated / narrowed ones of ``feedback.pii_recognizers``.
_REPLACED = ("CreditCardRecognizer", "IbanRecognizer", "UsSsnRecognizer", "UrlRecognizer", "IpRecognizer")


def _install_recognizers(analyzer: Any, language: str) -> None:
    """Swap in this project's recognizers (module docstring of ``feedback.pii_recognizers``)."""
    from feedback import pii_addresses as addr
    from feedback import pii_recognizers as rec
    from feedback.names import NameGazetteerRecognizer

    for name in _REPLACED:
        analyzer.registry.remove_recognizer(name, language=language)
    _use_validated_phone_score(analyzer, language)
    recognizers = [
        rec.card_recognizer(),
        rec.IbanCheckedRecognizer(),
        rec.SsnRecognizer(),
        rec.dob_recognizer(),
        rec.PhoneFallbackRecognizer(),
        rec.SchemeUrlRecognizer(),
        rec.PublicIpRecognizer(supported_language=language),
        addr.LatinAddressRecognizer(supported_language=language),
        addr.NonLatinScriptRecognizer(supported_language=language),
        NameGazetteerRecognizer(supported_language=language),
    ]
    for recognizer in recognizers:
        recognizer.supported_language = language
        analyzer.registry.add_recognizer(recognizer)


def _use_validated_phone_score(analyzer: Any, language: str) -> None:
    """Replace Presidio's phone recognizer by one scoring libphonenumber-validated numbers at 0.6.

    The stock recognizer scores a valid number without a context word ("phone", "call") at 0.4, below the usual
    threshold, so "reach me at 415-555-2671" would be stored raw. libphonenumber validation is strong evidence.
    """
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    from feedback.pii_validators import phone_shaped

    class _ValidatedPhoneRecognizer(PhoneRecognizer):  # type: ignore[misc]
        SCORE = 0.6

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            # libphonenumber also "validates" dotted quads such as 192.168.1.0 (of 192.168.1.0/24): not phones.
            results = super().analyze(text, entities, nlp_artifacts)
            return [r for r in results if phone_shaped(text[r.start : r.end]) and text[r.end : r.end + 1] != "/"]

    analyzer.registry.remove_recognizer("PhoneRecognizer", language=language)
    analyzer.registry.add_recognizer(_ValidatedPhoneRecognizer(supported_language=language))


class PresidioScrubber:
    """Detects and replaces PII with ``<ENTITY_TYPE>`` placeholders (see module docstring).

    ``settings.entities`` selects the Presidio entity types; findings scoring below ``settings.score_threshold`` are
    ignored. Loading the engine takes a few seconds: build one scrubber per process and share it.
    """

    def __init__(self, settings: PiiSettings) -> None:
        if not settings.entities:
            raise InvalidInputError("pii.entities must name at least one entity type", field="pii.entities")
        self._settings = settings
        started = time.perf_counter()
        self._analyzer = _build_analyzer(settings)
        from presidio_analyzer import BatchAnalyzerEngine
        from presidio_anonymizer import AnonymizerEngine

        self._batch = BatchAnalyzerEngine(analyzer_engine=self._analyzer)
        self._anonymizer = AnonymizerEngine()
        supported = set(self._analyzer.get_supported_entities(language=settings.language))
        unknown = sorted(set(settings.entities) - supported)
        if unknown:
            raise InvalidInputError(f"unsupported PII entity types: {', '.join(unknown)}", field="pii.entities")
        # spaCy pipelines are not documented as re-entrant: every analysis goes through one coalescer, which runs
        # one batch at a time and merges concurrent callers' texts into it (one ``nlp.pipe`` for all of them).
        # A round is bounded in characters and shared round-robin, so a batch of long comments cannot hold a short
        # request (a query's question) back for more than one round.
        self._coalescer: Coalescer[str, list[Any]] = Coalescer(
            self._analyze_batch, max_batch=64, max_cost=_ROUND_CHARS, cost=len
        )
        logger.info("pii engine loaded model=%s seconds=%.2f", settings.spacy_model, time.perf_counter() - started)

    @property
    def entities(self) -> list[str]:
        """Entity types this scrubber detects."""
        return list(self._settings.entities)

    def _analyze(self, text: str) -> list[Any]:
        return self._analyze_many([text])[0]

    def _analyze_batch(self, texts: list[str]) -> list[list[Any]]:
        """Presidio's batch API over ``texts`` (non-blank); run by the coalescer, never concurrently."""
        batches = self._batch.analyze_iterator(
            texts,
            language=self._settings.language,
            batch_size=32,
            entities=self._settings.entities,
            score_threshold=self._settings.score_threshold,
            allow_list=list(ALLOW_LIST),
        )
        return [refine(text, list(results)) for text, results in zip(texts, batches, strict=True)]

    def scan(self, text: str) -> list[PiiFinding]:
        """Find PII spans in ``text`` without replacing them, ordered by position."""
        if not text or not text.strip():
            return []
        return [PiiFinding(r.entity_type, r.start, r.end, float(r.score)) for r in self._analyze(text)]

    def scrub(self, text: str) -> ScrubResult:
        """Replace every PII span of ``text`` with ``<ENTITY_TYPE>``; text without PII is returned unchanged."""
        if not text or not text.strip():
            return ScrubResult(text=text)
        return self._replace(text, self._analyze(text))

    def scrub_many(self, texts: Sequence[str]) -> list[ScrubResult]:
        """Scrub several texts in one pass of the spaCy pipeline (Presidio's batch API); order preserved.

        Much cheaper per text than calling :meth:`scrub` in a loop (one ``nlp.pipe`` instead of one call per text).
        """
        return [self._replace(t, r) for t, r in zip(texts, self._analyze_many(texts), strict=True)]

    def scan_many(self, texts: Sequence[str]) -> list[list[PiiFinding]]:
        """:meth:`scan` for several texts in one batched pass; order preserved."""
        return [
            [PiiFinding(r.entity_type, r.start, r.end, float(r.score)) for r in results]
            for results in self._analyze_many(texts)
        ]

    def _analyze_many(self, texts: Sequence[str]) -> list[list[Any]]:
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        out: list[list[Any]] = [[] for _ in texts]
        for i, results in zip(todo, self._coalescer.submit([texts[i] for i in todo]) if todo else [], strict=True):
            out[i] = results
        return out

    def _replace(self, text: str, results: list[Any]) -> ScrubResult:
        if not results:
            return ScrubResult(text=text)
        from presidio_anonymizer.entities import OperatorConfig

        operators = {r.entity_type: OperatorConfig("replace", {"new_value": f"<{r.entity_type}>"}) for r in results}
        anonymized = self._anonymizer.anonymize(text=text, analyzer_results=results, operators=operators)
        findings = tuple(PiiFinding(r.entity_type, r.start, r.end, float(r.score)) for r in results)
        return ScrubResult(text=anonymized.text, findings=findings)
