"""The platform's fee on a sale: one rule, read by checkout, receipts and the reports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from flask import current_app


def platform_fee(amount_pence: int) -> int:
    """``PLATFORM_FEE_PERCENT`` of the amount, rounded to the nearest penny (half up)."""
    percent = Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"]))
    return int((Decimal(amount_pence) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
