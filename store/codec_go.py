"""The bits of Go that etcd's gateway inherits and clients can see. Pure.

etcd reads request bodies with Go's encoding/json and encoding/base64 (through grpc-gateway
v1.9 and golang/protobuf 1.3 jsonpb) and answers with their error text verbatim, and it
writes strings with json.Marshal. Clients match on that text, so this module re-creates,
exactly, the little of Go we need: the JSON scanner's syntax errors ("invalid character 'o'
in literal null (expecting 'u')", "unexpected EOF"), base64.StdEncoding's decoder with its
error offsets ("illegal base64 data at input byte 4"), strconv.Quote, and json.Marshal's
HTML-safe string escaping. The scanner is the slow path only: it runs after a fast parser
has already said no, to find Go's words for the reason.
"""

from __future__ import annotations

import binascii
import re

# ---- Go's strconv.Quote, for error texts -------------------------------------------------------

_SHORT_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r",
                  0x22: '\\"', 0x5C: "\\\\"}


def quote(text: str) -> str:
    """Go's %q of a string (undecodable bytes, kept as surrogateescape, print as \\xNN)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if code in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[code])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _quote_char(c: int) -> str:
    """encoding/json's quoteChar: how a syntax error shows the offending byte."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    return "'" + quote(chr(c))[1:-1] + "'"


# ---- Go's JSON scanner: only its verdict and its wording --------------------------------------

_OBJ_KEY, _OBJ_VALUE, _ARR_VALUE = 0, 1, 2
_CONTINUE, _END, _ERROR = 0, 1, 2
_SPACE = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')  # string bytes the scanner passes over
_MAX_DEPTH = 10000                          # encoding/json's maxNestingDepth (Go >= 1.15)


class _Scanner:
    """encoding/json's scanner state machine, re-expressed; used only to word errors."""

    def __init__(self) -> None:
        self.step = self._begin_value
        self.stack: list[int] = []
        self.end_top = False
        self.err: str | None = None
        self.expect = b""
        self.literal = ""
        self.hex_left = 0

    def _error(self, c: int, context: str) -> int:
        self.err = f"invalid character {_quote_char(c)} {context}"
        self.step = self._dead
        return _ERROR

    def _dead(self, c: int) -> int:
        return _ERROR

    def _push(self, c: int, state: int) -> int:
        self.stack.append(state)
        return self._error(c, "exceeded max depth") if len(self.stack) > _MAX_DEPTH else _CONTINUE

    def _pop(self) -> int:
        self.stack.pop()
        if self.stack:
            self.step = self._end_value
        else:
            self.step, self.end_top = self._end_top, True
        return _CONTINUE

    def _begin_value_or_empty(self, c: int) -> int:
        if c in _SPACE:
            return _CONTINUE
        return self._end_value(c) if c == 0x5D else self._begin_value(c)

    def _begin_value(self, c: int) -> int:
        if c in _SPACE:
            return _CONTINUE
        if c == 0x7B:  # {
            self.step = self._begin_string_or_empty
            return self._push(c, _OBJ_KEY)
        if c == 0x5B:  # [
            self.step = self._begin_value_or_empty
            return self._push(c, _ARR_VALUE)
        if c == 0x22:
            self.step = self._in_string
        elif c == 0x2D:
            self.step = self._neg
        elif c == 0x30:
            self.step = self._zero
        elif 0x31 <= c <= 0x39:
            self.step = self._one
        elif c in (0x74, 0x66, 0x6E):  # t f n
            self.literal = {0x74: "true", 0x66: "false", 0x6E: "null"}[c]
            self.expect = self.literal[1:].encode()
            self.step = self._in_literal
        else:
            return self._error(c, "looking for beginning of value")
        return _CONTINUE

    def _begin_string_or_empty(self, c: int) -> int:
        if c in _SPACE:
            return _CONTINUE
        if c == 0x7D:  # }
            self.stack[-1] = _OBJ_VALUE
            return self._end_value(c)
        return self._begin_string(c)

    def _begin_string(self, c: int) -> int:
        if c in _SPACE:
            return _CONTINUE
        if c == 0x22:
            self.step = self._in_string
            return _CONTINUE
        return self._error(c, "looking for beginning of object key string")

    def _end_value(self, c: int) -> int:
        if not self.stack:
            self.step, self.end_top = self._end_top, True
            return self._end_top(c)
        if c in _SPACE:
            self.step = self._end_value
            return _CONTINUE
        state = self.stack[-1]
        if state == _OBJ_KEY:
            if c == 0x3A:
                self.stack[-1], self.step = _OBJ_VALUE, self._begin_value
                return _CONTINUE
            return self._error(c, "after object key")
        if state == _OBJ_VALUE:
            if c == 0x2C:
                self.stack[-1], self.step = _OBJ_KEY, self._begin_string
                return _CONTINUE
            return self._pop() if c == 0x7D else self._error(c, "after object key:value pair")
        if c == 0x2C:
            self.step = self._begin_value
            return _CONTINUE
        return self._pop() if c == 0x5D else self._error(c, "after array element")

    def _end_top(self, c: int) -> int:
        if c not in _SPACE:
            self._error(c, "after top-level value")
        return _END

    def _in_string(self, c: int) -> int:
        if c == 0x22:
            self.step = self._end_value
        elif c == 0x5C:
            self.step = self._in_string_escape
        elif c < 0x20:
            return self._error(c, "in string literal")
        return _CONTINUE

    def _in_string_escape(self, c: int) -> int:
        if c in b'bfnrt\\/"':
            self.step = self._in_string
        elif c == 0x75:
            self.step, self.hex_left = self._in_hex, 4
        else:
            return self._error(c, "in string escape code")
        return _CONTINUE

    def _in_hex(self, c: int) -> int:
        if c not in _HEX:
            return self._error(c, "in \\u hexadecimal character escape")
        self.hex_left -= 1
        if not self.hex_left:
            self.step = self._in_string
        return _CONTINUE

    def _neg(self, c: int) -> int:
        if c == 0x30:
            self.step = self._zero
        elif 0x31 <= c <= 0x39:
            self.step = self._one
        else:
            return self._error(c, "in numeric literal")
        return _CONTINUE

    def _one(self, c: int) -> int:
        return _CONTINUE if c in _DIGITS else self._zero(c)

    def _zero(self, c: int) -> int:
        if c == 0x2E:
            self.step = self._dot
        elif c in (0x65, 0x45):
            self.step = self._exp
        else:
            return self._end_value(c)
        return _CONTINUE

    def _dot(self, c: int) -> int:
        if c in _DIGITS:
            self.step = self._dot_digits
            return _CONTINUE
        return self._error(c, "after decimal point in numeric literal")

    def _dot_digits(self, c: int) -> int:
        if c in _DIGITS:
            return _CONTINUE
        if c in (0x65, 0x45):
            self.step = self._exp
            return _CONTINUE
        return self._end_value(c)

    def _exp(self, c: int) -> int:
        if c in (0x2B, 0x2D):
            self.step = self._exp_sign
            return _CONTINUE
        return self._exp_sign(c)

    def _exp_sign(self, c: int) -> int:
        if c in _DIGITS:
            self.step = self._exp_digits
            return _CONTINUE
        return self._error(c, "in exponent of numeric literal")

    def _exp_digits(self, c: int) -> int:
        return _CONTINUE if c in _DIGITS else self._end_value(c)

    def _in_literal(self, c: int) -> int:
        want = self.expect[0]
        if c != want:
            return self._error(c, f"in literal {self.literal} (expecting {_quote_char(want)})")
        self.expect = self.expect[1:]
        if not self.expect:
            self.step = self._end_value
        return _CONTINUE


def syntax_error(data: bytes, *, whole: bool) -> str | None:
    """Go's syntax error for `data`, or None when Go would accept it.

    whole=False is json.Decoder (the gateway's body reader): only the first value counts and
    running out inside it is "unexpected EOF". whole=True is json.Unmarshal (used on the
    inside of a quoted int64): trailing bytes are an error, and so is running out.
    """
    scan = _Scanner()
    i, n = 0, len(data)
    while i < n:
        if scan.step == scan._in_string:
            i = _PLAIN.match(data, i).end()
            if i == n:
                break
        result = scan.step(data[i])
        if whole:
            if result == _ERROR:
                return scan.err
        elif result == _END or scan.end_top:
            return None
        elif result == _ERROR:
            return scan.err
        i += 1
    if whole:
        if scan.err is not None:
            return scan.err
        if not scan.end_top:
            scan.step(0x20)
        if scan.end_top:
            return None
        return scan.err or "unexpected end of JSON input"
    if scan.step(0x20) == _END or scan.end_top:
        return None
    return "unexpected EOF"


# ---- Go's base64.StdEncoding.DecodeString ----------------------------------------------------

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_MAP = [0xFF] * 256
for _index, _char in enumerate(_B64_ALPHABET):
    _B64_MAP[_char] = _index


class Base64Error(ValueError):
    """base64.CorruptInputError: the text is Go's, the offset counts input bytes."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")


def b64decode(text: str) -> bytes:
    """Padded standard base64 exactly as Go decodes it: CR/LF skipped, trailing bits ignored."""
    if len(text) % 4 == 0 and text.isascii():
        # Canonical text (alphabet, then at most two '=') decodes alike everywhere: C speed.
        # binascii's strict_mode is no guard: it takes "YS8x=", which Go refuses.
        data = text.encode("ascii")
        body = data.rstrip(b"=")
        if len(data) - len(body) <= 2 and not body.translate(None, _B64_ALPHABET):
            return binascii.a2b_base64(data)
    try:
        src = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates from \ud800-style escapes
        src = text.encode("utf-8", "surrogatepass")
    out = bytearray()
    si, n = 0, len(src)
    while si < n:
        quantum = [0, 0, 0, 0]
        size, j, trailing = 4, 0, -1
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise Base64Error(si - j)
            c = src[si]
            si += 1
            sextet = _B64_MAP[c]
            if sextet != 0xFF:
                quantum[j] = sextet
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != 0x3D or j < 2:  # not '=', or padding too early
                raise Base64Error(si - 1)
            if j == 2:  # "==" expected: the second '=' must follow (after newlines)
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    raise Base64Error(n)
                if src[si] != 0x3D:
                    raise Base64Error(si - 1)
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                trailing = si
            size = j
            break
        value = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3]
        out += value.to_bytes(3, "big")[: size - 1]
        if trailing >= 0:
            raise Base64Error(trailing)
    return bytes(out)


# ---- Go's JSON string encoding (HTML-safe, as json.Marshal writes it) --------------------------

NEEDS_ESCAPE = re.compile("[\x00-\x1f<>&\u2028\u2029\ud800-\udfff]")


def json_string(text: str) -> bytes:
    """json.Marshal of a string: <, >, & and U+2028/9 as \\u escapes, \\u00XX for controls."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&" or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # Go writes invalid UTF-8 as U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out).encode()
