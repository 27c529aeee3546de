"""manage.py prebooking_demo: demo users and prebookings in a known order, one instant or spread."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django_q.models import Schedule

from jobs.models import Job
from prebooking.models import DemoGymClass, Prebooking

pytestmark = pytest.mark.django_db


def _run(*args: str) -> dict:
    out = StringIO()
    call_command("prebooking_demo", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_demo_creates_prebookings_for_one_instant_in_creation_order():
    summary = _run("--count", "5", "--in", "600")

    prebookings = list(Prebooking.objects.order_by("created_at", "id"))
    assert [p.pk for p in prebookings] == summary["ids"]
    assert {p.opens_at.isoformat() for p in prebookings} == {summary["instant"]}
    assert len({p.owner_id for p in prebookings}) == 5
    assert DemoGymClass.objects.get(class_id=summary["class_ids"][0]).capacity == 5
    assert Job.objects.filter(name="prebooking.tasks.arm").count() == 2  # one instant, 2 armers


def test_demo_spreads_openings_over_the_given_seconds():
    _run("--count", "4", "--in", "600", "--spread", "60")

    offsets = sorted(
        (p.opens_at - Prebooking.objects.order_by("opens_at").first().opens_at).total_seconds()
        for p in Prebooking.objects.all()
    )
    assert offsets == [0, 15, 30, 45]


def test_the_recovery_sweep_is_a_periodic_job_on_the_timing_queue():
    sweep = Schedule.objects.get(name="periodic:prebooking.tasks.sweep")

    assert sweep.func == "prebooking.tasks.sweep"
    assert sweep.cluster == "timing"
    assert sweep.minutes == 1
