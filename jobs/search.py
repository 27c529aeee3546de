"""One search box for jobs: by id, target, a natural id another app knows, or error text.

The jobs layer knows no app; an app that puts jobs on its rows registers a finder that maps
a term it recognises (a Stripe event id, a prebooking id, an e-mail address) to those jobs.
Every branch is an indexed lookup: the primary key, the target index, the unique key's, and
the trigram index on the error text (``job_error_trgm``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q

JobFinder = Callable[[str], Q | None]
# pg_trgm extracts no trigram from fewer characters: shorter text could not use the index.
MIN_TEXT_CHARS = 3

_finders: list[JobFinder] = []


def job_finder(finder: JobFinder) -> JobFinder:
    """Register `finder(term) -> Q on Job` (or None when the term means nothing to it)."""
    if finder not in _finders:
        _finders.append(finder)
    return finder


def error_text(term: str) -> Q:
    """Jobs whose last error contains `term`, any case (served by ``job_error_trgm``)."""
    return Q(last_error__icontains=term) & ~Q(last_error="")


def job_match(term: str) -> Q:
    """Everything `term` may mean to a person looking for a job."""
    term = term.strip()
    # No job type (name): it has no index of its own, and one unindexed branch would turn the
    # whole OR into a scan of every job; the list's filter picks a type.
    match = Q(target=term) | Q(unique_key=term)
    number = term.removeprefix("#")
    if number.isdigit() and len(number) < 19:
        match |= Q(pk=int(number))
    if len(term) >= MIN_TEXT_CHARS:
        match |= error_text(term)
    for finder in _finders:
        found = finder(term)
        if found is not None:
            match |= found
    return match
