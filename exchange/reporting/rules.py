"""Pure statistics rules: utilization against the action plan's targets, and the price index.

No Flask, no database. Tonnes and prices are ``Decimal``; rates are fractions (0.15 = 15 %).

**Conversion of deliveries to red-mud tonnes (dry basis).** A delivery counts for utilization
with its *accepted* tonnes, turned into dry tonnes and then into red-mud tonnes:

    material dry t = accepted t × (1 − moisture % / 100)   when the contract's basis is wet
                   = accepted t                            when it is dry
    red-mud dry t  = material dry t × red_mud_factor(material)

``red_mud_factor`` comes from the catalog (1 for red mud itself, the mass share of red mud for
products, 0 for co-wastes and for products that carry no red-mud solids). A wet delivery without
a moisture figure cannot be converted; it is counted as *unconverted* rather than guessed.
Generation is reported on a dry basis already, so the two add up.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from exchange.reporting.carbon import CarbonResult, delivery_carbon
from exchange.reporting.facts import DeliveryFact, GenerationFact, TradeFact

ZERO = Decimal(0)
HUNDRED = Decimal(100)
TONNE_PLACES = Decimal("0.001")
PRICE_PLACES = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")

#: ``end_use`` of the aggregate rows that carry generation (generation has no end use).
GENERATION_ROW = ""

CONVERSION_METHOD = (
    "Red mud delivered to use = accepted tonnes, converted to dry tonnes with the contract's "
    "moisture when the contract counts wet tonnes (dry = wet × (1 − moisture %)), times the "
    "material's red-mud factor (1 for red mud; the red-mud mass share for products; 0 for "
    "co-wastes). Counted in the month the buyer received it, in the province of the producer's "
    "plant. Generation is reported dry by producers. Rate = delivered ÷ generated. Red mud taken "
    "from old stockpiles is not told apart from new red mud, so the rate can exceed the plan's "
    "'newly generated' rate."
)


@dataclass(frozen=True)
class Target:
    year: int
    rate: Decimal
    source: str


#: 赤泥综合利用行动方案 (工信部联节〔2024〕225号): new red mud utilized, 15 % by 2027, 25 % by 2030.
TARGETS: tuple[Target, ...] = (
    Target(2027, Decimal("0.15"), "工信部联节〔2024〕225号 赤泥综合利用行动方案"),
    Target(2030, Decimal("0.25"), "工信部联节〔2024〕225号 赤泥综合利用行动方案"),
)


# --- months and weeks ---


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every month start from ``first``'s month to ``last``'s month, inclusive."""
    out, month = [], month_start(first)
    end = month_start(last)
    while month <= end:
        out.append(month)
        month = add_months(month, 1)
    return out


def week_start(day: dt.date) -> dt.date:
    """The Monday of ``day``'s ISO week."""
    return day - dt.timedelta(days=day.weekday())


# --- conversion ---


def dry_tonnes(quantity: Decimal, basis: str, moisture_pct: Decimal | None) -> Decimal | None:
    """``quantity`` on a dry basis; None for wet tonnes whose moisture is unknown.

    Raises ValueError for a moisture outside [0, 100) or an unknown basis.
    """
    if basis == "dry":
        return quantity
    if basis != "wet":
        raise ValueError(f"unknown basis {basis!r}")
    if moisture_pct is None:
        return None
    if not ZERO <= moisture_pct < HUNDRED:
        raise ValueError("moisture must be in [0, 100)")
    return quantity * (HUNDRED - moisture_pct) / HUNDRED


def red_mud_tonnes(material_dry_t: Decimal, red_mud_factor: Decimal) -> Decimal:
    """Dry red-mud tonnes a dry tonnage of a material stands for."""
    return material_dry_t * red_mud_factor


def utilization_rate(generated_t: Decimal, delivered_t: Decimal) -> Decimal | None:
    """Delivered ÷ generated as a fraction, rounded to 4 places; None when nothing was generated."""
    if generated_t <= ZERO:
        return None
    return (delivered_t / generated_t).quantize(RATE_PLACES, ROUND_HALF_UP)


@dataclass(frozen=True)
class TargetGap:
    year: int
    target_rate: Decimal
    #: Percentage points still missing (0 once met).
    gap_points: Decimal
    #: More dry tonnes that would have had to be delivered in the period to meet the target.
    tonnes_short: Decimal
    met: bool


def target_gaps(generated_t: Decimal, delivered_t: Decimal) -> list[TargetGap]:
    """The gap to each target for a period's totals (no gap when nothing was generated)."""
    rate = utilization_rate(generated_t, delivered_t)
    gaps = []
    for target in TARGETS:
        if rate is None:
            gaps.append(TargetGap(target.year, target.rate, ZERO, ZERO, True))
            continue
        missing = max(target.rate - rate, ZERO)
        short = max(target.rate * generated_t - delivered_t, ZERO).quantize(TONNE_PLACES)
        gaps.append(
            TargetGap(
                target.year,
                target.rate,
                (missing * HUNDRED).quantize(PRICE_PLACES),
                short,
                rate >= target.rate,
            )
        )
    return gaps


# --- the aggregate rows ---


@dataclass(frozen=True)
class UtilizationKey:
    month: dt.date
    province: str
    producer_id: int
    site_id: int
    end_use: str  #: GENERATION_ROW for generation


@dataclass(frozen=True)
class UtilizationRow:
    """One row of the pre-aggregated statistics (additive in every measure)."""

    key: UtilizationKey
    generated_t: Decimal = ZERO
    delivered_t: Decimal = ZERO  #: red-mud dry tonnes delivered to use
    material_dry_t: Decimal = ZERO  #: dry tonnes of the materials themselves
    deliveries: int = 0
    unconverted: int = 0  #: wet deliveries without a moisture figure (not counted)
    co2_avoided_t: Decimal = ZERO
    transport_co2_t: Decimal = ZERO

    def __add__(self, other: UtilizationRow) -> UtilizationRow:
        return replace(
            self,
            generated_t=self.generated_t + other.generated_t,
            delivered_t=self.delivered_t + other.delivered_t,
            material_dry_t=self.material_dry_t + other.material_dry_t,
            deliveries=self.deliveries + other.deliveries,
            unconverted=self.unconverted + other.unconverted,
            co2_avoided_t=self.co2_avoided_t + other.co2_avoided_t,
            transport_co2_t=self.transport_co2_t + other.transport_co2_t,
        )

    @property
    def net_co2_t(self) -> Decimal:
        return self.co2_avoided_t - self.transport_co2_t


@dataclass(frozen=True)
class DeliveryContribution:
    """What one delivery adds to the statistics, with the carbon method."""

    material_dry_t: Decimal | None
    red_mud_t: Decimal | None
    carbon: CarbonResult | None


def delivery_contribution(
    fact: DeliveryFact, red_mud_factor: Decimal, *, include_carbonation: bool = False
) -> DeliveryContribution:
    """Dry material tonnes, red-mud tonnes and carbon of one accepted delivery."""
    material_dry = dry_tonnes(fact.accepted_t, fact.basis, fact.moisture_pct)
    if material_dry is None:
        return DeliveryContribution(None, None, None)
    carbon = delivery_carbon(
        fact, material_dry, red_mud_factor, include_carbonation=include_carbonation
    )
    return DeliveryContribution(material_dry, red_mud_tonnes(material_dry, red_mud_factor), carbon)


def _q(value: Decimal) -> Decimal:
    return value.quantize(TONNE_PLACES, ROUND_HALF_UP)


def aggregate(
    generation: Iterable[GenerationFact],
    deliveries: Iterable[DeliveryFact],
    red_mud_factor: Callable[[str], Decimal],
    *,
    include_carbonation: bool = False,
) -> list[UtilizationRow]:
    """The aggregate rows (month × province × producer × site × end use) of the facts.

    Deliveries count in the month they were received, under the producer's plant and province,
    with their accepted tonnes converted as the module docstring says. Tonnes are rounded to the
    kilogram per row, after summing.
    """
    # Mutable sums per key (a million deliveries: no object per delivery beyond its carbon).
    sums: dict[UtilizationKey, list[Decimal | int]] = {}

    def acc(key: UtilizationKey) -> list[Decimal | int]:
        found = sums.get(key)
        if found is None:
            found = sums[key] = [ZERO, ZERO, ZERO, 0, 0, ZERO, ZERO]
        return found

    for g in generation:
        key = UtilizationKey(
            month_start(g.month), g.province, g.producer_id, g.site_id, GENERATION_ROW
        )
        acc(key)[0] += g.tonnes_dry
    factors: dict[str, Decimal] = {}
    for d in deliveries:
        key = UtilizationKey(
            month_start(d.received_on),
            d.origin_province,
            d.seller_id,
            d.origin_site_id,
            d.end_use or "unspecified",
        )
        factor = factors.get(d.material_code)
        if factor is None:
            factor = factors[d.material_code] = red_mud_factor(d.material_code)
        part = delivery_contribution(d, factor, include_carbonation=include_carbonation)
        row = acc(key)
        row[3] += 1
        if part.material_dry_t is None or part.red_mud_t is None:
            row[4] += 1
            continue
        row[1] += part.red_mud_t
        row[2] += part.material_dry_t
        if part.carbon is not None:
            row[5] += part.carbon.avoided_t
            row[6] += part.carbon.transport_t
    return [
        UtilizationRow(
            key,
            generated_t=_q(Decimal(v[0])),
            delivered_t=_q(Decimal(v[1])),
            material_dry_t=_q(Decimal(v[2])),
            deliveries=int(v[3]),
            unconverted=int(v[4]),
            co2_avoided_t=_q(Decimal(v[5])),
            transport_co2_t=_q(Decimal(v[6])),
        )
        for key, v in sorted(sums.items(), key=lambda kv: _sort_key(kv[0]))
    ]


def _sort_key(key: UtilizationKey) -> tuple[dt.date, str, int, int, str]:
    return (key.month, key.province, key.producer_id, key.site_id, key.end_use)


class Dimension(enum.StrEnum):
    MONTH = "month"
    PROVINCE = "province"
    PRODUCER = "producer"
    SITE = "site"
    END_USE = "end_use"


_DIMENSION_VALUE: Mapping[Dimension, Callable[[UtilizationKey], object]] = {
    Dimension.MONTH: lambda k: k.month,
    Dimension.PROVINCE: lambda k: k.province,
    Dimension.PRODUCER: lambda k: k.producer_id,
    Dimension.SITE: lambda k: k.site_id,
    Dimension.END_USE: lambda k: k.end_use,
}


@dataclass(frozen=True)
class GroupTotal:
    group: tuple[object, ...]
    generated_t: Decimal
    delivered_t: Decimal
    deliveries: int
    unconverted: int
    co2_avoided_t: Decimal
    transport_co2_t: Decimal

    @property
    def rate(self) -> Decimal | None:
        return utilization_rate(self.generated_t, self.delivered_t)

    @property
    def net_co2_t(self) -> Decimal:
        return self.co2_avoided_t - self.transport_co2_t

    def tonnes_short(self, target_rate: Decimal) -> Decimal:
        """Dry tonnes more that would have met ``target_rate`` (0 once met)."""
        return max(target_rate * self.generated_t - self.delivered_t, ZERO).quantize(TONNE_PLACES)


def group(rows: Iterable[UtilizationRow], by: Iterable[Dimension]) -> list[GroupTotal]:
    """Sum the rows by the given dimensions (none = one grand total), sorted by group.

    Grouping by end use leaves generation under ``GENERATION_ROW``: generation has no end use,
    so a rate by end use is delivered ÷ all generation, which the caller divides itself.
    """
    dims = tuple(by)
    sums: dict[tuple[object, ...], list[object]] = defaultdict(
        lambda: [ZERO, ZERO, 0, 0, ZERO, ZERO]
    )
    for r in rows:
        acc = sums[tuple(_DIMENSION_VALUE[d](r.key) for d in dims)]
        acc[0] = acc[0] + r.generated_t  # type: ignore[operator]
        acc[1] = acc[1] + r.delivered_t  # type: ignore[operator]
        acc[2] = acc[2] + r.deliveries  # type: ignore[operator]
        acc[3] = acc[3] + r.unconverted  # type: ignore[operator]
        acc[4] = acc[4] + r.co2_avoided_t  # type: ignore[operator]
        acc[5] = acc[5] + r.transport_co2_t  # type: ignore[operator]
    return [
        GroupTotal(k, *v)  # type: ignore[arg-type]
        for k, v in sorted(sums.items(), key=lambda kv: tuple(str(x) for x in kv[0]))
    ]


# --- price index ---


@dataclass(frozen=True)
class PricePoint:
    """The volume-weighted signed price of one week, material family and province.

    ``value`` is Σ price × tonnes, kept so points re-aggregate exactly (national = Σ value ÷
    Σ volume over provinces). A negative price is a disposal fee the producer pays.
    """

    week: dt.date
    material_family: str
    province: str
    volume_t: Decimal
    value: Decimal
    trades: int

    @property
    def price(self) -> Decimal:
        return (self.value / self.volume_t).quantize(PRICE_PLACES, ROUND_HALF_UP)


def weekly_price_index(trades: Iterable[TradeFact]) -> list[PricePoint]:
    """Volume-weighted signed price per ISO week (Shanghai date), material family and province."""
    acc: dict[tuple[dt.date, str, str], tuple[Decimal, Decimal, int]] = {}
    for t in trades:
        if t.quantity <= ZERO:
            continue
        key = (week_start(t.local_date), t.material_family, t.province)
        volume, value, n = acc.get(key, (ZERO, ZERO, 0))
        acc[key] = (volume + t.quantity, value + t.price * t.quantity, n + 1)
    return [
        PricePoint(week, family, province, volume, value, n)
        for (week, family, province), (volume, value, n) in sorted(acc.items())
    ]


def combine_price_points(points: Iterable[PricePoint], *, province: str = "") -> list[PricePoint]:
    """Merge points of the same week and family across provinces (``province`` labels them)."""
    acc: dict[tuple[dt.date, str], tuple[Decimal, Decimal, int]] = {}
    for p in points:
        volume, value, n = acc.get((p.week, p.material_family), (ZERO, ZERO, 0))
        acc[(p.week, p.material_family)] = (volume + p.volume_t, value + p.value, n + p.trades)
    return [
        PricePoint(week, family, province, volume, value, n)
        for (week, family), (volume, value, n) in sorted(acc.items())
        if volume > ZERO
    ]
