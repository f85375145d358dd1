"""Post-processing of Presidio findings: technical text stays, role words stay, overlaps merge into one span.

The rule for technical text: a *soft* finding (one from a statistical or heuristic recognizer: ``PERSON``,
``LOCATION``, ``STREET_ADDRESS``, ``URL``, ``NRP``, ``ORGANIZATION``, ``DATE_TIME``) that lies entirely inside a
technical token is dropped. Technical tokens are file names with a known extension (``pg_hba.conf``), paths
(``/etc/ssl/certs/ca.pem``, ``C:\\ProgramData``), snake_case and dotted identifiers (``max_connections``,
``spring.datasource.url``, ``db01.internal``), command-line flags, mixed-case product names (``PostgreSQL``),
versions, CIDR networks, URLs to local hosts and back-quoted code. Validated findings (cards, IBANs, SSNs, emails,
phones, public IPs, dates of birth) are never dropped: a card number inside a path is still a card number.

An NER finding (spaCy) that only partly covers a technical token is cut down to its part outside it ("Deny fd00::/48"
tagged as a name keeps the range). Also: a ``PERSON`` span starting with a role or title word ("Customer Jane Doe") is
trimmed to the name; an NER name without a capital letter ("max", "mm") is dropped; a single word tagged ``LOCATION``
by the NER model ("Refunds", "Berlin") is dropped — a bare place name is not personal data, street addresses are found
by their own recognizer; overlapping findings merge into their union (typed by the strongest), so no fragment of a
value survives between two partial findings.
"""

from __future__ import annotations

import re
from typing import Any

SOFT = frozenset({"PERSON", "LOCATION", "STREET_ADDRESS", "URL", "NRP", "ORGANIZATION", "DATE_TIME"})
_EXTENSIONS = (
    "conf|cfg|cnf|ini|pem|crt|cer|key|csr|p12|pfx|jks|yaml|yml|json|toml|xml|py|pyc|sh|bash|zsh|ps1|bat|cmd|log|txt|"
    "sql|csv|tsv|md|rst|env|service|socket|timer|so|dll|exe|msi|jar|war|js|mjs|ts|tsx|html|css|lock|pid|sock|gz|tgz|"
    "zip|tar|bz2|xz|rb|go|rs|java|kt|php|properties|pgpass|db|sqlite|sqlite3|bak|dump|tf|tfvars|repo|list|plist|out|"
    "err|gpg|asc|pub|ovpn|cron|d|rules|whl|deb|rpm|dmg|iso|img|tmpl|j2|cs|c|h|cpp|hpp|swift|vue|ipynb|parquet|mdb"
)
TECHNICAL = re.compile(
    "|".join(
        (
            rf"(?<![\w@])[\w.+-]*\w\.(?:{_EXTENSIONS})(?![\w.])",  # file names
            r"(?<![\w:/.@])(?:~|\.{1,2})?/[\w.@%+~=,-]+(?:/[\w.@%+~=,-]*)*",  # POSIX paths
            r"\b[A-Za-z]:\\[\w\\. -]*",  # Windows paths
            r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b",  # snake_case / SCREAMING_SNAKE keys
            r"\b[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+\b",  # dotted keys, modules, host names
            r"(?<![\w-])--?[A-Za-z][\w-]*(?:=\S+)?",  # command-line flags
            r"\b[a-z]+[A-Z][A-Za-z0-9]*\b|\b[A-Z][a-z]+[A-Z]{2,}[A-Za-z0-9]*\b",  # PostgreSQL, pgBouncer (not McDonald)
            r"\bv?\d+(?:\.\d+)+(?:[-+][\w.]+)?\b",  # versions
            r"\b\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}\b|\b[0-9A-Fa-f:]*:[0-9A-Fa-f:]+/\d{1,3}\b",  # CIDR networks
            r"`[^`\n]+`",  # back-quoted code
            # URLs to local hosts
            r"\b[a-z]+://(?:localhost|127(?:\.\d+){3}|10(?:\.\d+){3}|192\.168(?:\.\d+){2}|\[::1\])(?::\d+)?(?:/\S*)?",
        )
    )
)
# Words that open a PERSON span without being part of the name.
_ROLES = (
    "customer customers client caller agent user member ticket colleague manager supervisor representative rep mr "
    "mr. mrs mrs. ms ms. miss dr dr. prof prof. sir madam dear hi hello thanks contact account holder from cc attn "
    "tenant patient guest buyer seller owner admin operator escalated spoke with"
)  # fmt: skip
ROLE_WORDS = frozenset(_ROLES.split())


def technical_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every technical token of ``text`` (see module docstring)."""
    return [m.span() for m in TECHNICAL.finditer(text)]


def refine(text: str, results: list[Any]) -> list[Any]:
    """Apply the module's rules to Presidio ``RecognizerResult`` s of ``text``; sorted, non-overlapping."""
    tech = technical_spans(text)
    kept = []
    for r in results:
        if r.entity_type in SOFT and any(s <= r.start and r.end <= e for s, e in tech):
            continue
        if r.entity_type in SOFT and _from_ner(r) and not _cut_technical(text, r, tech):
            continue
        if r.entity_type == "PERSON" and _from_ner(r) and _lower_case_latin(text[r.start : r.end]):
            continue
        if r.entity_type == "PERSON":
            _trim_role_words(text, r)
            if r.end <= r.start:
                continue
        if r.entity_type == "LOCATION" and _from_ner(r) and not re.search(r"\s", text[r.start : r.end].strip()):
            continue
        kept.append(r)
    return merge_overlaps(kept)


def _lower_case_latin(value: str) -> bool:
    """Latin letters and not one capital: "max", "mm", "jack rafter" (the small model's guesses, not names)."""
    return bool(re.search(r"[A-Za-z]", value)) and not any(ch.isupper() for ch in value)


def _from_ner(result: Any) -> bool:
    meta = getattr(result, "recognition_metadata", None) or {}
    return "Spacy" in str(meta.get("recognizer_name", ""))


def _cut_technical(text: str, result: Any, tech: list[tuple[int, int]]) -> bool:
    """Shrink an NER finding to its longest piece outside technical tokens; ``False`` when no letter is left.

    The small NER model sometimes tags a command or a range with the word before it ("Deny fd00::/48"); the
    technical token must survive, the rest stays a finding.
    """
    overlapping = [(s, e) for s, e in tech if s < result.end and e > result.start]
    if not overlapping:
        return True
    pieces = [(result.start, result.end)]
    for s, e in overlapping:
        pieces = [p for a, b in pieces for p in ((a, min(b, s)), (max(a, e), b)) if p[0] < p[1]]
    pieces = [(a, b) for a, b in pieces if re.search(r"[^\W\d_]{2,}", text[a:b])]
    if not pieces:
        return False
    a, b = max(pieces, key=lambda p: p[1] - p[0])
    piece = text[a:b]
    result.start = a + len(piece) - len(piece.lstrip(" -,:;`'\"("))
    result.end = b - (len(piece) - len(piece.rstrip(" -,:;`'\").")))
    return result.end > result.start


def _trim_role_words(text: str, result: Any) -> None:
    """Move ``result.start`` past leading role / title words (and the spaces after them)."""
    while True:
        match = re.match(r"\s*(\S+)\s+", text[result.start : result.end])
        if not match or match.group(1).lower().rstrip(":,") not in ROLE_WORDS:
            return
        result.start += match.end()


def merge_overlaps(results: list[Any]) -> list[Any]:
    """Merge overlapping findings into their union, typed and scored by the strongest (then longest) of them."""
    merged: list[Any] = []
    for r in sorted(results, key=lambda r: (r.start, -r.end)):
        if merged and r.start < merged[-1].end:
            top = merged[-1]
            if (r.score, r.end - r.start) > (top.score, top.end - top.start):
                top.entity_type, top.score = r.entity_type, r.score
            top.end = max(top.end, r.end)
        else:
            merged.append(r)
    return merged


# Words the small NER model tags as names or places in support text; Presidio's allow-list drops exact matches.
ALLOW_LIST = (
    "Refunds", "Refund", "Billing", "Invoices", "Invoice", "Settings", "Security", "Admin", "Dashboard", "Support",
    "Postgres", "PostgreSQL", "MySQL", "Redis", "Nginx", "Apache", "Kafka", "Grafana", "Prometheus", "Kubernetes",
    "Docker", "Ubuntu", "Debian", "Linux", "Windows", "Azure", "Jira", "Zendesk", "Salesforce", "Slack", "Okta",
    "Terraform", "Ansible", "Elasticsearch", "Kibana", "Logstash", "RabbitMQ", "Celery", "Django", "Flask",
    "FastAPI", "Qdrant", "Presidio", "HAProxy", "Traefik", "Vault", "Consul", "Helm", "OpenSSL", "Certbot",
    "JSON", "YAML", "XML", "CSV", "PDF", "API", "SQL", "TLS", "SSL", "DNS", "HTTP", "HTTPS", "VPN", "SSO", "SAML",
    "OAuth", "JWT", "CORS", "VPC", "IAM", "SMTP", "LDAP", "GitHub", "GitLab",
)  # fmt: skip
