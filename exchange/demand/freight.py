"""Distance, freight and transport CO2 between a storage site and a delivery site (pure).

Money is ``Decimal`` throughout. The great-circle distance is computed with ``math`` (there is no
decimal trigonometry) and rounded to 0.1 km before any money is derived from it, so every figure
shown to a user can be reproduced by hand from the distance, the factor and the rates.

Defaults and where they come from (``FreightSettings``):

* road 0.459 CNY/t·km — market rate for full truckloads over 500–600 km (2014,
  public.9t56.com/show.asp?id=868). The older CFLP full-truckload figure, 0.242 CNY/t·km (2008,
  old.chinawuliu.com.cn/office/30/176/7291.shtml), is lower; the more recent market rate is used.
* rail 0.1031 CNY/t·km — 10.31 fen/t·km (kivarchemicals.com).
* water: **no sourced rate**; unpriced (mode skipped) until ``MATCH_RATE_WATER`` is configured.
* road-distance factor 1.3 — platform assumption: road (and rail) routes run longer than the
  great circle; no source in the project's facts.
* handling 15 CNY per hauled tonne (loading and unloading) — platform assumption, configurable.
* CO2 per t·km: road 90.3 g, rail 11.3 g, inland waterway 38.6 g — 2014 factors for the
  Netherlands (KiM, CE Delft) in Eur. Transp. Res. Rev. 2019, doi 10.1186/s12544-019-0344-x,
  Table 9 (rail assumes 80 % electric traction). Applying them to China is an assumption: Chinese
  rail electricity is more coal-heavy, so the rail figure is likely low.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088

CENT = Decimal("0.01")
TENTH = Decimal("0.1")


class TransportMode(enum.StrEnum):
    ROAD = "road"
    RAIL = "rail"
    WATER = "water"


@dataclass(frozen=True)
class RateSource:
    value: Decimal | None
    source: str


DEFAULT_RATES: MappingProxyType[TransportMode, RateSource] = MappingProxyType(
    {
        TransportMode.ROAD: RateSource(
            Decimal("0.459"), "Road full truckload, 500–600 km, 2014 (public.9t56.com)"
        ),
        TransportMode.RAIL: RateSource(
            Decimal("0.1031"), "Rail 10.31 fen/t·km (kivarchemicals.com)"
        ),
        TransportMode.WATER: RateSource(None, "No sourced rate: set MATCH_RATE_WATER"),
    }
)
DEFAULT_CO2: MappingProxyType[TransportMode, RateSource] = MappingProxyType(
    {
        TransportMode.ROAD: RateSource(Decimal("0.0903"), "Eur. Transp. Res. Rev. 2019, Table 9"),
        TransportMode.RAIL: RateSource(Decimal("0.0113"), "Eur. Transp. Res. Rev. 2019, Table 9"),
        TransportMode.WATER: RateSource(Decimal("0.0386"), "Eur. Transp. Res. Rev. 2019, Table 9"),
    }
)
DEFAULT_ROAD_FACTOR = Decimal("1.3")
DEFAULT_HANDLING = Decimal("15")


@dataclass(frozen=True)
class FreightSettings:
    """Everything freight depends on; built from the app config (``MATCH_*``) at the boundary."""

    #: Route length over great-circle distance (applied to every mode). Platform assumption.
    road_factor: Decimal = DEFAULT_ROAD_FACTOR
    #: CNY per tonne·km by mode; None = not priced (the mode is skipped).
    rates: Mapping[TransportMode, Decimal | None] = field(
        default_factory=lambda: {m: r.value for m, r in DEFAULT_RATES.items()}
    )
    #: Fixed CNY per hauled tonne (loading, unloading). Platform assumption.
    handling: Decimal = DEFAULT_HANDLING
    #: kg CO2 per tonne·km by mode.
    co2_per_tkm: Mapping[TransportMode, Decimal] = field(
        default_factory=lambda: {m: r.value for m, r in DEFAULT_CO2.items() if r.value is not None}
    )

    def priced(self, modes: tuple[TransportMode, ...] | None = None) -> tuple[TransportMode, ...]:
        """The modes (of ``modes``, default all) that have a rate."""
        wanted = tuple(TransportMode) if modes is None else modes
        return tuple(m for m in wanted if self.rates.get(m) is not None)

    def cheapest_rate(self, modes: tuple[TransportMode, ...] | None = None) -> Decimal | None:
        rates = [self.rates[m] for m in self.priced(modes)]
        return min(r for r in rates if r is not None) if rates else None


def settings_from_config(config: Mapping[str, object]) -> FreightSettings:
    """``FreightSettings`` from ``MATCH_*`` keys (strings or numbers); missing keys: defaults."""

    def dec(key: str, default: Decimal | None) -> Decimal | None:
        raw = config.get(key)
        if raw is None or raw == "":
            return default
        return Decimal(str(raw))

    base = FreightSettings()
    rates = {m: dec(f"MATCH_RATE_{m.value.upper()}", base.rates.get(m)) for m in TransportMode}
    co2 = {
        m: dec(f"MATCH_CO2_{m.value.upper()}", base.co2_per_tkm.get(m)) or Decimal(0)
        for m in TransportMode
    }
    return FreightSettings(
        road_factor=dec("MATCH_ROAD_FACTOR", base.road_factor) or base.road_factor,
        rates=rates,
        handling=dec("MATCH_HANDLING", base.handling) or Decimal(0),
        co2_per_tkm=co2,
    )


def great_circle_km(lat1: Decimal, lon1: Decimal, lat2: Decimal, lon2: Decimal) -> Decimal:
    """Haversine distance in km, rounded half-up to 0.1 km."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp = p2 - p1
    dl = math.radians(float(lon2) - float(lon1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
    return Decimal(repr(km)).quantize(TENTH, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Leg:
    """The cost of moving one tonne of hauled material by one mode."""

    mode: TransportMode
    great_circle_km: Decimal
    route_km: Decimal
    rate: Decimal
    handling: Decimal
    #: CNY per hauled tonne: route_km × rate + handling, to the fen.
    freight: Decimal
    #: kg CO2 per hauled tonne: route_km × factor, to 0.01 kg.
    co2_kg: Decimal


def leg(distance_km: Decimal, mode: TransportMode, settings: FreightSettings) -> Leg | None:
    """Freight and CO2 per hauled tonne over ``distance_km`` by ``mode``; None if unpriced."""
    rate = settings.rates.get(mode)
    if rate is None:
        return None
    route = (distance_km * settings.road_factor).quantize(TENTH, rounding=ROUND_HALF_UP)
    freight = (route * rate + settings.handling).quantize(CENT, rounding=ROUND_HALF_UP)
    co2 = (route * settings.co2_per_tkm.get(mode, Decimal(0))).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    return Leg(mode, distance_km, route, rate, settings.handling, freight, co2)


def cheapest_leg(
    distance_km: Decimal, modes: tuple[TransportMode, ...], settings: FreightSettings
) -> tuple[Leg | None, tuple[Leg, ...]]:
    """The cheapest priced leg among ``modes`` (ties: less CO2, then mode order) and all legs."""
    legs = tuple(x for m in modes if (x := leg(distance_km, m, settings)) is not None)
    if not legs:
        return None, ()
    order = list(TransportMode)
    best = min(legs, key=lambda x: (x.freight, x.co2_kg, order.index(x.mode)))
    return best, legs


# --- lower bounds for SQL prefilters -------------------------------------------------------------

#: km per degree of latitude along a meridian; great-circle distance ≥ this × |Δlat|.
KM_PER_DEG_LAT = Decimal(repr(EARTH_RADIUS_KM * math.pi / 180))
#: Sites beyond this latitude skip the longitude bound (it relies on cos(lat) ≥ cos(cap)).
LON_BOUND_LAT_CAP = 55
#: The longitude bound only holds for separations up to this many degrees.
LON_BOUND_MAX_DEG = 60


def _km_per_deg_lon_bound() -> Decimal:
    # For Δλ ≤ 60°: d = 2R·asin(cosφ₁cosφ₂ sin²(Δλ/2) + ...)^½ ≥ 2R·cos(cap)·sin(Δλ/2)
    #   ≥ 2R·cos(cap)·(Δλ/2)·sin(30°)/(π/6)  (sin x / x decreases on [0, π/6]),
    # where both |φ| ≤ cap. Rounded down so the bound stays a bound.
    per_rad = EARTH_RADIUS_KM * math.cos(math.radians(LON_BOUND_LAT_CAP)) * (0.5 / (math.pi / 6))
    value = per_rad * math.pi / 180
    return Decimal(repr(value)).quantize(Decimal("0.001"), rounding="ROUND_FLOOR")


KM_PER_DEG_LON_BOUND = _km_per_deg_lon_bound()
