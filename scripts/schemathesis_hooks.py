"""Schemathesis hooks for scripts/schemathesis.

- The browser report formats (`application/csp-report`, `application/reports+json`) are JSON under
  their own media types; Schemathesis is told how to write them.
- A date or amount range whose ends are inverted (`since` after `until`, `min_value` above
  `max_value`) is a 422 by design, a rule across two parameters that JSON Schema cannot state; such
  generated queries are left out of the positive (schema-valid) cases.
"""

import datetime
import json
from decimal import Decimal, InvalidOperation

import schemathesis


@schemathesis.serializer("application/csp-report", "application/reports+json")
def report(ctx, value):
    return json.dumps(value).encode()


def _day(text):
    try:
        return datetime.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def _amount(text):
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


@schemathesis.hook
def filter_query(ctx, query):
    if not query:
        return True
    since, until = _day(query.get("since", "")), _day(query.get("until", ""))
    if since and until and since > until:
        return False
    low, high = _amount(query.get("min_value", "")), _amount(query.get("max_value", ""))
    if low is not None and high is not None and low > high:
        return False
    return True
