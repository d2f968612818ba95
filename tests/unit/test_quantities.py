"""Resource quantities against apimachinery's own test tables, plus a model check."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver import quantities
from apiserver.quantities import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    FORMAT_ERROR,
    SUFFIX_ERROR,
    Quantity,
    bytes_value,
    cpu_millis,
    parse_quantity,
    quantity_from_json,
    round_up_milli,
)


@pytest.mark.parametrize(("text", "value", "fmt"), [
    ("0", "0", DECIMAL_SI), ("0Ki", "0", BINARY_SI), ("1", "1", DECIMAL_SI),
    ("1Ki", "1024", BINARY_SI), ("7Mi", str(7 * 2**20), BINARY_SI), ("3Ei", str(3 * 2**60), BINARY_SI),
    ("5n", "5e-9", DECIMAL_SI), ("4u", "4e-6", DECIMAL_SI), ("3m", "0.003", DECIMAL_SI),
    ("8k", "8000", DECIMAL_SI), ("50k", "50000", DECIMAL_SI), ("1E", "1e18", DECIMAL_SI),
    ("1E-3", "0.001", DECIMAL_EXPONENT), ("1e3", "1000", DECIMAL_EXPONENT), ("1E6", "1e6", DECIMAL_EXPONENT),
    ("100.035k", "100035", DECIMAL_SI), ("0.0005k", "0.5", DECIMAL_SI), ("0.5e-2", "0.005", DECIMAL_EXPONENT),
    ("1.3E+6", "1300000", DECIMAL_EXPONENT), ("1.01E", "1.01e18", DECIMAL_SI),
    # rounded up to a whole nano, capped at 2^63-1 for binary, binary below 1 becomes decimal
    ("3.001n", "4e-9", DECIMAL_SI), ("0.0000000001", "1e-9", DECIMAL_SI), ("0.00000012345", "124e-9", DECIMAL_SI),
    ("9Ei", str(2**63 - 1), BINARY_SI), ("12E", "12e18", DECIMAL_SI),
    ("100.035Ki", "102435.84", BINARY_SI), ("0.5Mi", str(2**19), BINARY_SI),
    ("0.000000000001Ki", "2e-9", DECIMAL_SI), (".001", "0.001", DECIMAL_SI), ("1.", "1", DECIMAL_SI),
    ("1.G", "1e9", DECIMAL_SI), (".", "0", DECIMAL_SI), ("m", "0", DECIMAL_SI),
])
def test_parse_matches_apimachinery_table(text: str, value: str, fmt: str) -> None:
    q = parse_quantity(text)
    assert q.value == Decimal(value) and q.format == fmt
    assert parse_quantity("+" + text).value == q.value
    assert parse_quantity("-" + text).value == -q.value


@pytest.mark.parametrize(("text", "message"), [
    ("1.1.M", FORMAT_ERROR), ("1+1.0M", FORMAT_ERROR), ("aoeu", FORMAT_ERROR), (" 1", FORMAT_ERROR),
    ("1 ", FORMAT_ERROR), ("", FORMAT_ERROR), ("0.1mi", SUFFIX_ERROR), ("0.1am", FORMAT_ERROR),
    (".5i", SUFFIX_ERROR), ("1i", SUFFIX_ERROR), ("-3.01e-", SUFFIX_ERROR), ("1e4294967297", SUFFIX_ERROR),
    ("1e", SUFFIX_ERROR), ("1ki", SUFFIX_ERROR),
])
def test_invalid_quantities_carry_kubernetes_messages(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_quantity(text)
    assert str(err.value) == message
    assert FORMAT_ERROR == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize(("value", "fmt", "text"), [
    (2**30, BINARY_SI, "1Gi"), (300 * 2**20, BINARY_SI, "300Mi"), (1001 * 2**30, BINARY_SI, "1001Gi"),
    (5, BINARY_SI, "5"), (Decimal("0.5"), BINARY_SI, "500m"), (Decimal("1234.567"), BINARY_SI, "1234567m"),
    (1025, BINARY_SI, "1025"), (2000, BINARY_SI, "2000"), (-2000, BINARY_SI, "-2000"),
    (Decimal("1e9"), DECIMAL_SI, "1G"), (Decimal("0.001"), DECIMAL_SI, "1m"), (Decimal("1.08"), DECIMAL_SI, "1080m"),
    (Decimal("300e6"), DECIMAL_SI, "300M"), (3000, DECIMAL_SI, "3k"), (0, BINARY_SI, "0"),
    (Decimal("1e18"), DECIMAL_SI, "1E"), (Decimal("1e21"), DECIMAL_SI, "1e21"), (Decimal("5e21"), DECIMAL_SI, "5e21"),
    (Decimal("1e70"), BINARY_SI, "10e69"), (2**70, BINARY_SI, "1180591620717411303424"),
    (Decimal("1e9"), DECIMAL_EXPONENT, "1e9"), (Decimal("0.001"), DECIMAL_EXPONENT, "1e-3"),
    (Decimal("0.08"), DECIMAL_EXPONENT, "80e-3"), (Decimal("1.08e-6"), DECIMAL_SI, "1080n"),
    (Decimal("1e-12"), DECIMAL_SI, "1e-12"), (Decimal("1e-10"), DECIMAL_SI, "100e-12"),
])
def test_canonical_form_matches_apimachinery_table(value: object, fmt: str, text: str) -> None:
    q = Quantity(Decimal(value), fmt)
    assert q.canonical() == text
    if not text.startswith(("0", "-")):
        assert Quantity(-Decimal(value), fmt).canonical() == "-" + text


@pytest.mark.parametrize(("text", "printed"), [
    ("1Ki", "1Ki"), ("1024Mi", "1Gi"), ("1000M", "1G"), (".001Ki", "1024m"), (".000001Ki", "1024u"),
    (".000000000001Ki", "2n"), ("0.5", "500m"), ("1.5", "1500m"), ("1.5Gi", "1536Mi"), ("2e3", "2e3"),
    ("1000E", "1e21"), ("1.1Ki", "1126400m"), ("0.5Ki", "512"),
    # Go reuses an input it considers canonical verbatim, quirks included
    ("+1", "+1"), ("1.500", "1.500"), ("1.", "1."), ("1E3", "1E3"), ("12Mi", "12Mi"), ("100m", "100m"),
])
def test_printed_form_is_what_kubernetes_stores(text: str, printed: str) -> None:
    assert str(parse_quantity(text)) == printed


def test_comparison_and_arithmetic_are_exact() -> None:
    assert parse_quantity("100m") > parse_quantity("50m")
    assert parse_quantity("10000T") > parse_quantity("100Gi")
    assert parse_quantity("1") == parse_quantity("1000m") == parse_quantity("1e0")
    assert len({parse_quantity("1Ki"), parse_quantity("1024")}) == 1
    total = parse_quantity("100m") + parse_quantity("0.2")
    assert str(total) == "300m" and total.format == DECIMAL_SI
    assert str(parse_quantity("0") + parse_quantity("1Gi")) == "1Gi"  # zero takes the other's format
    assert str(parse_quantity("1Gi") - parse_quantity("512Mi")) == "512Mi"
    assert str(-parse_quantity("9.01")) == "-9010m"
    assert str(parse_quantity("1Ei") * 1024) == "1180591620717411303424"
    with pytest.raises(ValueError):
        parse_quantity("1e2000000000") + parse_quantity("1")


def test_helpers_for_schedulers_and_kubelets() -> None:
    assert cpu_millis("100m") == 100 and cpu_millis("0.5") == 500 and cpu_millis("2") == 2000
    assert cpu_millis("1n") == 1  # ceil
    assert bytes_value("128Mi") == 128 * 2**20 and bytes_value("1G") == 10**9 and bytes_value("1.5") == 2
    assert cpu_millis(parse_quantity("1e100")) == quantities.MAX_INT64
    assert str(round_up_milli(parse_quantity("100u"))) == "1m"
    assert str(round_up_milli(parse_quantity("1500u"))) == "2m"
    kept = parse_quantity("1.500")
    assert round_up_milli(kept) is kept
    assert str(quantity_from_json(1)) == "1" and str(quantity_from_json(0.5)) == "500m"
    assert str(quantity_from_json(" 2Gi ")) == "2Gi"
    for bad in (True, None, [], "x"):
        with pytest.raises(ValueError):
            quantity_from_json(bad)


def test_huge_exponents_do_not_materialise() -> None:
    big = parse_quantity("1e2147483647")
    assert str(big) == "10e2147483646" and big > parse_quantity("9Ei")
    assert str(parse_quantity("1e-2000000000")) == "1e-9"
    assert parse_quantity("-").is_zero() and str(parse_quantity("-0")) == "0"  # as Go: a bare sign is zero


_SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
             "e0", "e3", "E-3", "e12", "e-7", "E+2"]
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

quantity_texts = st.builds(
    lambda sign, whole, frac, suffix: f"{sign}{whole}{'.' + frac if frac is not None else ''}{suffix}",
    st.sampled_from(["", "+", "-"]),
    st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    st.none() | st.from_regex(r"[0-9]{0,12}", fullmatch=True),
    st.sampled_from(_SUFFIXES),
)


def _model(text: str) -> Fraction:
    """An independent reading of the grammar: exact value, rounded up to 1n, binary capped."""
    match = re.fullmatch(r"([+-]?)([0-9.]*)(.*)", text)
    assert match is not None
    sign = -1 if match[1] == "-" else 1
    number, suffix = match[2], match[3]
    value = Fraction(number if number not in ("", ".") else "0")
    if suffix in _BINARY:
        value *= 2 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    else:
        value *= Fraction(10) ** int(suffix[1:])
    nanos = value * 10**9
    value = Fraction(math.ceil(nanos), 10**9)
    if suffix in _BINARY:
        value = min(value, Fraction(quantities.MAX_INT64))
    return sign * value


@given(quantity_texts)
def test_parse_agrees_with_a_fraction_model(text: str) -> None:
    assert Fraction(parse_quantity(text).value) == _model(text)


@given(quantity_texts)
def test_printed_form_round_trips_and_is_stable(text: str) -> None:
    q = parse_quantity(text)
    canonical = q.canonical()
    again = parse_quantity(canonical)
    assert again == q
    assert again.canonical() == canonical
    assert parse_quantity(str(q)) == q
    assert "." not in canonical
