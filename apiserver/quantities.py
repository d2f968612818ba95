"""Kubernetes resource quantities (`500m`, `128Mi`, `1.5`, `2e3`): parse, compare, format.

Mirrors apimachinery's resource.Quantity, because clients diff what they sent against
what the apiserver stored and print it back: `cpu: 0.5` must come back as `500m`,
`1024Mi` as `1Gi`, exactly as a real apiserver re-serialises them.

The rules, worked through once:

- The text is `<sign><digits>[.<digits>]<suffix>`; the suffix is a decimal SI one
  (`n u m "" k M G T P E`), a binary one (`Ki .. Ei`), or an exponent (`e3`, `E-3`).
  `E` alone is exa; `E3` is an exponent. The suffix decides the *format* the quantity
  keeps when printed again.
- Values are exact (`decimal.Decimal`, never float) and rounded *up* (away from zero)
  to a multiple of 1n; binary quantities are capped at 2^63-1.
- Printing ("canonical form") uses the largest suffix that needs no fractional digits,
  with the exponent a multiple of 3: `1.5` -> `1500m`, `1.5Gi` -> `1536Mi`. A binary
  value below 1024 or with a fraction prints in decimal SI.
- Like Go, a string that parsed on the fast path and already looks canonical is
  printed back verbatim (so `+1` and `1.500` survive a round trip unchanged).
"""

from __future__ import annotations

import decimal
import functools
import re
from decimal import Decimal
from typing import Final

DECIMAL_SI: Final = "DecimalSI"
BINARY_SI: Final = "BinarySI"
DECIMAL_EXPONENT: Final = "DecimalExponent"

FORMAT_ERROR: Final = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
SUFFIX_ERROR: Final = "unable to parse quantity's suffix"

MAX_INT64: Final = 2**63 - 1
_MAX_INT32: Final = 2**31 - 1
_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_EXPONENT_RE = re.compile(r"[+-]?[0-9]+")
_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DEC_BY_EXP = {exp: suffix for suffix, exp in _DEC_SUFFIX.items()}
_BIN_BY_EXP = {exp: suffix for suffix, exp in _BIN_SUFFIX.items()}
_NANO = Decimal("1e-9")
_MILLI = Decimal("1e-3")
# Arithmetic stays exact: a result that would need more digits raises instead of rounding.
_CTX = decimal.Context(
    prec=10_000,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow],
)


@functools.total_ordering
class Quantity:
    """An exact quantity plus the format it prints in; equality and order use the value."""

    __slots__ = ("value", "format", "text")

    def __init__(self, value: Decimal, fmt: str = DECIMAL_SI, text: str | None = None) -> None:
        self.value = value
        self.format = fmt
        # The original string when Go would reuse it verbatim; None means "print canonically".
        self.text = text

    def __str__(self) -> str:
        return self.text if self.text is not None else self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            return NotImplemented
        return self.value == other.value

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(_exact(_CTX.add, self.value, other.value), _sum_format(self, other))

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(_exact(_CTX.subtract, self.value, other.value), _sum_format(self, other))

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __mul__(self, factor: int) -> Quantity:
        return Quantity(_exact(_CTX.multiply, self.value, Decimal(factor)), self.format)

    def is_zero(self) -> bool:
        return self.value == 0

    def canonical(self) -> str:
        """Kubernetes' canonical form: no fractional digits, the largest suffix possible."""
        value = self.value
        if value == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI:
            if -1024 < value < 1024 or value.adjusted() > 4000 or value != value.to_integral_value():
                fmt = DECIMAL_SI
            else:
                text = _binary_text(int(value))
                if text is not None:
                    return text
                fmt = DECIMAL_EXPONENT  # beyond Ei: exact decimal rather than a lost magnitude
        mantissa, exponent = _mantissa_exponent(value)
        if fmt == DECIMAL_SI and exponent in _DEC_BY_EXP:
            return f"{mantissa}{_DEC_BY_EXP[exponent]}"
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)


def parse_quantity(text: str) -> Quantity:
    """Parse like resource.ParseQuantity; ValueError carries Kubernetes' message."""
    if not text:
        raise ValueError(FORMAT_ERROR)
    if text == "0":
        return Quantity(Decimal(0), DECIMAL_SI, "0")
    negative, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    sign = "-" if negative else ""
    if base == 10:
        value = Decimal(f"{sign}{num}{denom}E{exponent - len(denom)}")
    else:
        digits = Decimal(f"{sign}{num}{denom}E{-len(denom)}")
        value = decimal.Context(prec=len(num + denom) + 25).multiply(digits, Decimal(2**exponent))
    value = _round_away(value, _NANO)
    if fmt == BINARY_SI and abs(value) > MAX_INT64:
        value = Decimal(-MAX_INT64 if negative else MAX_INT64)
    if fmt == BINARY_SI and 0 < abs(value) < 1:
        fmt = DECIMAL_SI
    reuse = _reuses_text(num, denom, exponent, base)
    return Quantity(value, fmt, text if reuse else None)


def quantity_from_json(raw: object) -> Quantity:
    """A quantity as it appears in a JSON body: a string (trimmed, as Go does) or a number."""
    if isinstance(raw, Quantity):
        return raw
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(FORMAT_ERROR)
    return parse_quantity(raw.strip() if isinstance(raw, str) else repr(raw))


def round_up_milli(q: Quantity) -> Quantity:
    """SetDefaults_ResourceList: values finer than 1m are rounded up (away from zero)."""
    rounded = _round_away(q.value, _MILLI)
    if rounded == q.value:
        return q
    return Quantity(rounded, q.format)


def cpu_millis(q: Quantity | str) -> int:
    """MilliValue(): ceil(q * 1000), clamped to int64 where Go would overflow."""
    return _scaled_ceil(_coerce(q), 3)


def bytes_value(q: Quantity | str) -> int:
    """Value(): ceil(q), clamped to int64 where Go would overflow."""
    return _scaled_ceil(_coerce(q), 0)


def _coerce(q: Quantity | str) -> Quantity:
    return q if isinstance(q, Quantity) else parse_quantity(q)


def _scaled_ceil(q: Quantity, shift: int) -> int:
    if q.value.adjusted() + shift > 18:
        return MAX_INT64 if q.value > 0 else -MAX_INT64 - 1
    sign, digits, exp = q.value.as_tuple()
    scaled = Decimal((sign, digits, int(exp) + shift))
    return int(scaled.to_integral_value(rounding=decimal.ROUND_CEILING))


def _scan(text: str) -> tuple[bool, str, str, str]:
    """parseQuantityString: split into sign, numerator, denominator and suffix."""
    end = len(text)
    pos = 0
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return negative, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(FORMAT_ERROR)
    return negative, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    if suffix in _DEC_SUFFIX:
        return 10, _DEC_SUFFIX[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIX:
        return 2, _BIN_SUFFIX[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT_RE.fullmatch(suffix[1:]):
        exponent = int(suffix[1:])
        if abs(exponent) <= _MAX_INT32:
            return 10, exponent, DECIMAL_EXPONENT
    raise ValueError(SUFFIX_ERROR)


def _reuses_text(num: str, denom: str, exponent: int, base: int) -> bool:
    """Go's fast path keeps the input string when it is already (nearly) canonical."""
    shifted = num + denom
    if base == 10:
        scale = exponent - len(denom)
        if 18 - len(shifted) < 0 or scale < -9:
            return False
        return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
    if denom or 15 - len(num) - exponent * 3 // 10 - 1 < 0:
        return False
    if int(num) << exponent > MAX_INT64:
        return False
    return exponent % 10 == 0 and int(num) & 7 != 0


def _round_away(value: Decimal, step: Decimal) -> Decimal:
    """Round a non-zero value away from zero to a multiple of `step` (1e-9 or 1e-3)."""
    if value == 0 or int(value.as_tuple().exponent) >= int(step.as_tuple().exponent):
        return value
    if value.adjusted() < step.adjusted():
        return step.copy_sign(value)
    ctx = decimal.Context(prec=value.adjusted() - step.adjusted() + 2, rounding=decimal.ROUND_UP)
    return value.quantize(step, context=ctx)


def _mantissa_exponent(value: Decimal) -> tuple[str, int]:
    """AsCanonicalBytes: strip trailing zeros, then lower the exponent to a multiple of 3.

    Works on the digit string, so a quantity of any length prints without int() limits.
    """
    sign, digits, exp = value.as_tuple()
    text = "".join(map(str, digits)).lstrip("0")
    stripped = text.rstrip("0") or "0"
    exponent = int(exp) + len(text) - len(stripped)
    shift = exponent % 3
    return ("-" if sign else "") + stripped + "0" * shift, exponent - shift


def _binary_text(value: int) -> str | None:
    magnitude, power = abs(value), 0
    while magnitude % 1024 == 0:
        magnitude //= 1024
        power += 10
    if power and power not in _BIN_BY_EXP:
        return None
    return f"{'-' if value < 0 else ''}{magnitude}{_BIN_BY_EXP.get(power, '')}"


def _sum_format(left: Quantity, right: Quantity) -> str:
    return right.format if left.is_zero() else left.format


def _exact(op: object, left: Decimal, right: Decimal) -> Decimal:
    try:
        return op(left, right)  # type: ignore[operator]
    except (decimal.Inexact, decimal.InvalidOperation, decimal.Overflow) as exc:
        raise ValueError("quantity is too large to compute exactly") from exc
