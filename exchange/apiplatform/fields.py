"""marshmallow fields with the API's wire conventions.

- Decimals (tonnes, prices per tonne, coordinates) travel as JSON *strings* such as ``"1250.500"``
  so that no client parses them into a binary float. ``fields.Decimal(as_string=True)`` is
  documented as a number but returns a string; :class:`DecimalString` is documented as
  ``type: string`` with a ``pattern`` and refuses JSON numbers.
- Money is integer minor units (fen) next to an ISO 4217 currency.
- Times are ISO 8601 with a zone offset, in both directions.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields


class DecimalString(fields.String):
    """A decimal number sent and returned as a string with at most ``places`` decimals.

    ``max_digits`` and ``places`` mirror the database column (``Numeric(max_digits, places)``);
    ``signed`` allows a leading minus (prices: negative means a disposal fee the producer pays).
    ``minimum`` / ``maximum`` are checked on load; being strings, they are stated in the
    field's description rather than as JSON-Schema bounds.
    """

    default_error_messages = {
        "invalid": _l('Send this number as a string, for example "12.5".'),
        "format": _l("Use at most %(integer)d digits before and %(places)d after the point."),
        "minimum": _l("Must be at least %(limit)s."),
        "above_minimum": _l("Must be greater than %(limit)s."),
        "maximum": _l("Must be at most %(limit)s."),
    }

    def __init__(
        self,
        *,
        places: int,
        max_digits: int,
        signed: bool = False,
        minimum: Decimal | None = None,
        maximum: Decimal | None = None,
        exclusive_minimum: bool = False,
        **kwargs: Any,
    ) -> None:
        self.places = places
        self.integer_digits = max_digits - places
        self.minimum = minimum
        self.maximum = maximum
        self.exclusive_minimum = exclusive_minimum
        sign = "-?" if signed else ""
        fraction = rf"(\.[0-9]{{1,{places}}})?" if places else ""
        self.pattern = rf"^{sign}[0-9]{{1,{self.integer_digits}}}{fraction}$"
        self._regex = re.compile(self.pattern)
        metadata = dict(kwargs.pop("metadata", None) or {})
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '≥'} {minimum}")
        if maximum is not None:
            bounds.append(f"≤ {maximum}")
        description = metadata.get("description", "Decimal number as a string.")
        if bounds:
            description = f"{description} ({', '.join(bounds)})"
        metadata["description"] = description
        metadata.setdefault("pattern", self.pattern)
        metadata.setdefault("example", self._example())
        super().__init__(metadata=metadata, **kwargs)

    def _example(self) -> str:
        low = self.minimum if self.minimum is not None else Decimal(0)
        value = max(low, Decimal(1)) if self.maximum is None else (low + self.maximum) / 2
        return f"{value:.{self.places}f}"

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return f"{Decimal(value):.{self.places}f}"

    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> Decimal:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        if not self._regex.match(value):
            raise ValidationError(
                str(self.error_messages["format"])
                % {"integer": self.integer_digits, "places": self.places}
            )
        try:
            number = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes it
            raise self.make_error("invalid") from exc
        if self.minimum is not None:
            if self.exclusive_minimum and number <= self.minimum:
                raise ValidationError(
                    str(self.error_messages["above_minimum"]) % {"limit": self.minimum}
                )
            if number < self.minimum:
                raise ValidationError(str(self.error_messages["minimum"]) % {"limit": self.minimum})
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(str(self.error_messages["maximum"]) % {"limit": self.maximum})
        return number


def Tonnes(**kwargs: Any) -> DecimalString:  # noqa: N802 (reads as a type in schemas)
    """Tonnes as a string with up to 3 decimals (``Numeric(14, 3)``), greater than zero."""
    kwargs.setdefault("minimum", Decimal(0))
    kwargs.setdefault("exclusive_minimum", True)
    kwargs.setdefault("metadata", {"description": "Tonnes as a decimal string."})
    return DecimalString(places=3, max_digits=14, **kwargs)


def PricePerTonne(**kwargs: Any) -> DecimalString:  # noqa: N802
    """A signed price per tonne as a string with up to 2 decimals (``Numeric(12, 2)``).

    Negative means a disposal fee that the producer pays the buyer.
    """
    kwargs.setdefault(
        "metadata",
        {
            "description": "Price per tonne as a signed decimal string; negative means a "
            "disposal fee that the producer pays the buyer."
        },
    )
    return DecimalString(places=2, max_digits=12, signed=True, **kwargs)


class MinorUnits(fields.Integer):
    """Money in integer minor units (fen for CNY). Refuses floats, strings and booleans."""

    default_error_messages = {"invalid": _l("Send money as an integer number of fen.")}

    def __init__(self, **kwargs: Any) -> None:
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata.setdefault("description", "Money in integer minor units (fen for CNY).")
        super().__init__(strict=True, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Timestamp(fields.AwareDateTime):
    """An ISO 8601 time with a zone offset; naive times are refused on input.

    Values are returned in UTC (``2026-11-28T04:00:00+00:00``).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return str(super()._serialize(value.astimezone(dt.UTC), attr, obj, **kwargs))


def Currency(**kwargs: Any) -> fields.String:  # noqa: N802
    """An ISO 4217 currency code."""
    from marshmallow import validate

    return fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}$"),
        metadata={"description": "ISO 4217 currency code.", "example": "CNY"},
        **kwargs,
    )
