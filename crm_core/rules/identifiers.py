"""The unified social credit code (统一社会信用代码, GB 32100-2015): reading, checking, its region.

Pattern: pure functions over python-stdnum's ``stdnum.cn.uscc`` (the check digit and the
character set are its job). A code is stored compact and upper-case (``91110108551385082Q``),
the form the duplicate check (查重) looks up. Characters 3–8 are the GB/T 2260 code of the
registering authority's area: :func:`region_problem` compares them with the province and city
the user chose.
"""

from __future__ import annotations

import unicodedata

from stdnum import exceptions as stdnum_errors
from stdnum.cn import uscc

Problem = tuple[str, dict[str, str]]


def compact_credit_code(raw: str | None) -> str:
    """The stored form: full-width folded, spaces and dashes dropped, upper-case ('' when blank)."""
    if not raw:
        return ""
    folded = unicodedata.normalize("NFKC", raw)
    return str(uscc.compact(folded)).upper()


def credit_code_problem(raw: str | None) -> Problem | None:
    """Why ``raw`` is not a valid credit code (a catalog key), or None when it is valid or blank."""
    code = compact_credit_code(raw)
    if not code:
        return None
    try:
        uscc.validate(code)
    except stdnum_errors.InvalidLength:
        return ("validation.credit_code_length", {})
    except stdnum_errors.InvalidChecksum:
        return ("validation.credit_code_checksum", {})
    except stdnum_errors.ValidationError:
        return ("validation.credit_code_format", {})
    return None


def credit_code_region(code: str) -> str:
    """The six-digit area code inside a compact credit code (characters 3–8)."""
    return code[2:8]


def region_problem(code: str, province_code: str, city_code: str) -> Problem | None:
    """A credit code registered in another province or city than the one chosen, or None.

    Only the chosen levels are compared: a province alone checks the first two digits, a city
    the first four (a province-governed county-level city such as 济源 ``419001``: all six).
    """
    if not code or credit_code_problem(code) is not None:
        return None
    area = credit_code_region(code)
    if province_code and area[:2] != province_code[:2]:
        return ("validation.credit_code_region", {"area": area})
    if city_code:
        prefix = city_code[:4] if city_code.endswith("00") else city_code
        if not area.startswith(prefix):
            return ("validation.credit_code_region", {"area": area})
    return None
