"""Field errors and the string checks behind them, worded exactly as Kubernetes words them.

kubectl prints `The Pod "x" is invalid: spec.containers[0].image: Required value` from the
causes we return, and users (and tests written against real clusters) match on that
text. So this module mirrors apimachinery's field/errors.go (how a bad value is
printed: Go's %q for strings, %v for numbers, String() for quantities) and
util/validation (the DNS/label/port regexes and their messages, including Go's
"(e.g. 'my-name',  or '123-abc', ...)" spacing).

A cause is a plain dict: {"reason": "FieldValueInvalid", "message": "...", "field": "..."}.
Field paths are plain strings: "spec.containers[0].ports[1].containerPort",
"metadata.labels", "spec.selector.matchLabels[app]".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence

Cause = dict[str, str]

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
NOT_FOUND = "FieldValueNotFound"
_TITLES = {
    REQUIRED: "Required value", INVALID: "Invalid value", NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value", FORBIDDEN: "Forbidden", TOO_LONG: "Too long",
    NOT_FOUND: "Not found",
}
FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"


class GoText(str):
    """A bad value already rendered the way Go prints it (a Stringer, a %#v struct)."""


def go_quote(text: str) -> str:
    """strconv.Quote: Go's %q."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_value(value: object) -> str:
    """How ErrorBody prints a bad value."""
    if isinstance(value, GoText):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        return go_string_map(value)
    if isinstance(value, list | tuple):
        return go_string_slice(value)
    return go_quote(str(value))


def go_string_map(value: Mapping[str, object] | None) -> GoText:
    """%#v of a map[string]string (Go sorts the keys)."""
    if value is None:
        return GoText("map[string]string(nil)")
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(value.items()))
    return GoText(f"map[string]string{{{items}}}")


def go_string_slice(value: Sequence[object] | None) -> GoText:
    """%#v of a []string."""
    if value is None:
        return GoText("[]string(nil)")
    return GoText("[]string{" + ", ".join(go_quote(str(v)) for v in value) + "}")


def _go_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        return f"{mantissa}e{int(exp):+03d}"
    return text


def cause(reason: str, field: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": field}


def _body(reason: str, value: object, detail: str) -> str:
    title = _TITLES[reason]
    text = title if reason in (REQUIRED, FORBIDDEN, TOO_LONG) else f"{title}: {go_value(value)}"
    return f"{text}: {detail}" if detail else text


def required(field: str, detail: str = "") -> Cause:
    return cause(REQUIRED, field, _body(REQUIRED, None, detail))


def forbidden(field: str, detail: str) -> Cause:
    return cause(FORBIDDEN, field, _body(FORBIDDEN, None, detail))


def invalid(field: str, value: object, detail: str) -> Cause:
    return cause(INVALID, field, _body(INVALID, value, detail))


def duplicate(field: str, value: object) -> Cause:
    return cause(DUPLICATE, field, _body(DUPLICATE, value, ""))


def not_found(field: str, value: object, detail: str = "") -> Cause:
    return cause(NOT_FOUND, field, _body(NOT_FOUND, value, detail))


def too_long(field: str, max_bytes: int) -> Cause:
    return cause(TOO_LONG, field, _body(TOO_LONG, None, f"must have at most {max_bytes} bytes"))


def not_supported(field: str, value: object, valid: Iterable[str]) -> Cause:
    values = ", ".join(go_quote(v) for v in valid)
    return cause(NOT_SUPPORTED, field, _body(NOT_SUPPORTED, value, f"supported values: {values}" if values else ""))


def invalid_text(field: str, value: object, detail: str) -> str:
    """field.Invalid(...).Error(): the one-line form used inside other error strings."""
    return f"{field}: {_body(INVALID, value, detail)}"


def aggregate(messages: Sequence[str]) -> str:
    """utilerrors.Aggregate.Error(): de-duplicated, bracketed when there are several."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def nonnegative(field: str, value: object) -> list[Cause]:
    return [invalid(field, value, IS_NEGATIVE)] if isinstance(value, int) and value < 0 else []


def immutable(field: str, new: object, old: object) -> list[Cause]:
    return [] if new == old else [invalid(field, new, FIELD_IMMUTABLE)]


# --- util/validation: names, labels, keys, ports -------------------------------------


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _LABEL_KEY_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_ENV_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_PERCENT_FMT = "[0-9]+%"
_RE = {fmt: re.compile(fmt) for fmt in (
    _DNS1123_LABEL_FMT, _DNS1123_SUBDOMAIN_FMT, _DNS1035_LABEL_FMT, _LABEL_KEY_FMT,
    _LABEL_VALUE_FMT, _CONFIG_KEY_FMT, _ENV_NAME_FMT, _PERCENT_FMT,
)}


def _matches(fmt: str, value: str) -> bool:
    return _RE[fmt].fullmatch(value) is not None


def _blen(value: str) -> int:
    return len(value.encode())


def dns1123_label_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if _blen(value) > 63 else []
    if not _matches(_DNS1123_LABEL_FMT, value):
        if _matches(_DNS1123_SUBDOMAIN_FMT, value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character",
                _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs = [max_len_error(253)] if _blen(value) > 253 else []
    if not _matches(_DNS1123_SUBDOMAIN_FMT, value):
        errs.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character",
            _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if _blen(value) > 63 else []
    if not _matches(_DNS1035_LABEL_FMT, value):
        errs.append(_regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character",
            _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)


def label_key_errors(value: str) -> list[str]:
    """IsQualifiedName / IsLabelKey: `[prefix/]name`."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a valid label key " + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(parts[0]))
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _matches(_LABEL_KEY_FMT, name):
        errs.append("name part " + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if _blen(value) > 63 else []
    if not _matches(_LABEL_VALUE_FMT, value):
        errs.append(_regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character",
            _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _chdir_errors(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    return ["must not start with '..'"] if value.startswith("..") else []


def config_map_key_errors(value: str) -> list[str]:
    errs = [max_len_error(253)] if _blen(value) > 253 else []
    if not _matches(_CONFIG_KEY_FMT, value):
        errs.append(_regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                 _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errs + _chdir_errors(value)


def env_var_name_errors(value: str) -> list[str]:
    errs = [] if _matches(_ENV_NAME_FMT, value) else [_regex_error(
        "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
        "and must not start with a digit", _ENV_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")]
    return errs + _chdir_errors(value)


def port_num_errors(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def port_name_errors(port: str) -> list[str]:
    errs = [max_len_error(15)] if len(port) > 15 else []
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def percent_errors(value: str) -> list[str]:
    if _matches(_PERCENT_FMT, value):
        return []
    return [_regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                         _PERCENT_FMT, "1%", "93%")]


def path_segment_errors(name: str) -> list[str]:
    """IsValidPathSegmentName: what a name must be to sit in a URL path."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """netutils.ParseIPSloppy: like ip_address, but IPv4 octets may have leading zeros."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        pass
    parts = value.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and int(p) < 256 for p in parts):
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    return None


def ip_errors(field: str, value: str) -> list[Cause]:
    if parse_ip(value) is None:
        return [invalid(field, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
    return []


def cidr_errors(field: str, value: str) -> list[Cause]:
    try:
        ipaddress.ip_network(value, strict=False)
        return [] if "/" in value else [invalid(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    except ValueError:
        return [invalid(field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


def _mask_trailing_dash(name: str) -> str:
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return dns1035_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return path_segment_errors(name)


# --- tolerant readers: objects are decoded JSON, so any field may have any type -------


def dict_of(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def list_of(value: object) -> list:
    return value if isinstance(value, list) else []


def dicts_of(value: object) -> list[dict]:
    return [item if isinstance(item, dict) else {} for item in list_of(value)]


def str_of(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
