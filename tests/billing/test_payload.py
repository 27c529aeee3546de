"""Payload fields read the same from the previous API version's shape and the current one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.handlers.payload import (
    invoice_payment_intent_id,
    invoice_subscription_id,
    subscription_period_end,
    subscription_price,
    subscription_quantity,
)

END = 1_800_000_000
LEGACY_SUBSCRIPTION = {
    "current_period_end": END,
    "quantity": 2,
    "plan": {"id": "price_basic", "nickname": "basic"},
    "items": {"data": [{"id": "si_1"}]},
}
CURRENT_SUBSCRIPTION = {
    "items": {
        "data": [
            {
                "current_period_end": END,
                "quantity": 2,
                "price": {"id": "price_basic", "lookup_key": "basic"},
            }
        ]
    }
}


@pytest.mark.parametrize("shape", [LEGACY_SUBSCRIPTION, CURRENT_SUBSCRIPTION])
def test_subscription_period_price_and_quantity_read_from_either_shape(shape):
    assert subscription_period_end(shape) == datetime.fromtimestamp(END, tz=UTC)
    assert subscription_price(shape) == ("price_basic", "basic")
    assert subscription_quantity(shape) == 2


@pytest.mark.parametrize(
    "invoice",
    [
        {"subscription": "sub_1", "payment_intent": "pi_1"},
        {"subscription": {"id": "sub_1"}, "payment_intent": {"id": "pi_1"}},  # expanded
        {
            "parent": {"subscription_details": {"subscription": "sub_1"}},
            "payments": {
                "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_1"}}]
            },
        },
    ],
)
def test_invoice_subscription_and_payment_intent_read_from_either_shape(invoice):
    assert invoice_subscription_id(invoice) == "sub_1"
    assert invoice_payment_intent_id(invoice) == "pi_1"


def test_missing_fields_read_as_nothing_rather_than_failing():
    assert subscription_period_end({}) is None
    assert subscription_price({}) == ("", "")
    assert invoice_subscription_id({"parent": None}) is None
