"""Formatting and parsing helpers that behave like the Go standard library.

Ollama is written in Go, so the text it prints (durations, timestamps, JSON,
quoted strings, host:port pairs) follows Go's rules.  The stand-in reproduces
those rules here so that anything parsing its output sees the same shapes.
"""

import datetime as _dt
import json
import math
import time
from decimal import Decimal
from typing import Any, Optional, Tuple

NANOSECOND = 1
MICROSECOND = 1000
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
MAX_DURATION = 2**63 - 1

_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,
    "\u03bcs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}


def go_json(obj: Any) -> bytes:
    """Encode like Go's json.Marshal: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8")


def rfc3339(ts: float, utc: bool = False) -> str:
    """Format a UNIX timestamp like Go's time.Time JSON (RFC 3339, trimmed fraction)."""
    if utc:
        dt = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    else:
        dt = _dt.datetime.fromtimestamp(ts).astimezone()
    frac = ("%06d" % dt.microsecond).rstrip("0")
    text = dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "")
    offset = dt.utcoffset() or _dt.timedelta(0)
    if offset == _dt.timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return "%s%s%02d:%02d" % (text, sign, minutes // 60, minutes % 60)


def rfc3339_far_future(ns_from_now: int) -> str:
    """expires_at for 'forever' keep-alives: Go adds MaxInt64 ns (about 292 years) to now."""
    return rfc3339(time.time() + ns_from_now / 1e9)


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration; returns nanoseconds or raises ValueError with Go's text."""
    orig = text
    if text == "":
        raise ValueError('time: invalid duration "%s"' % orig)
    neg = False
    if text[0] in "+-":
        neg = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if text == "":
        raise ValueError('time: invalid duration "%s"' % orig)
    total = Decimal(0)
    while text:
        i = 0
        while i < len(text) and (text[i].isdigit() or text[i] == "."):
            i += 1
        number = text[:i]
        if number in ("", ".") or number.count(".") > 1:
            raise ValueError('time: invalid duration "%s"' % orig)
        text = text[i:]
        j = 0
        while j < len(text) and not (text[j].isdigit() or text[j] == "."):
            j += 1
        unit = text[:j]
        text = text[j:]
        if unit == "":
            raise ValueError('time: missing unit in duration "%s"' % orig)
        if unit not in _UNITS:
            raise ValueError('time: unknown unit "%s" in duration "%s"' % (unit, orig))
        total += Decimal(number) * _UNITS[unit]
    nanos = int(total)
    if nanos > MAX_DURATION:
        raise ValueError('time: invalid duration "%s"' % orig)
    return -nanos if neg else nanos


def _fmt_frac(value: int, digits: int) -> str:
    whole, frac = divmod(value, 10**digits)
    frac_text = ("%0*d" % (digits, frac)).rstrip("0")
    return str(whole) + ("." + frac_text if frac_text else "")


def duration_string(ns: int) -> str:
    """Go's time.Duration.String (e.g. 5m0s, 1.5ms, 2562047h47m16.854775807s)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u < MICROSECOND:
            return "%s%dns" % (sign, u)
        if u < MILLISECOND:
            return sign + _fmt_frac(u, 3) + "\u00b5s"
        return sign + _fmt_frac(u, 6) + "ms"
    hours, rem = divmod(u, HOUR)
    minutes, rem = divmod(rem, MINUTE)
    secs = _fmt_frac(rem, 9) + "s"
    if hours:
        return "%s%dh%dm%s" % (sign, hours, minutes, secs)
    if minutes:
        return "%s%dm%s" % (sign, minutes, secs)
    return sign + secs


def format_float(value: float) -> str:
    """Go's %v for float64: strconv 'g' shortest, exponent form below 1e-4 and from 1e6 up."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_text = repr(abs(value))
    dec = Decimal(digits_text).normalize()
    digits = "".join(str(d) for d in dec.as_tuple().digits)
    exp = dec.adjusted()
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return "%s%se%s%02d" % (sign, mantissa, "-" if exp < 0 else "+", abs(exp))
    if exp >= len(digits) - 1:
        return sign + digits + "0" * (exp - len(digits) + 1)
    if exp >= 0:
        return sign + digits[: exp + 1] + "." + digits[exp + 1 :]
    return sign + "0." + "0" * (-exp - 1) + digits


def format_value(value: Any) -> str:
    """Go's %v for JSON-decoded values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_float(float(value))
    if isinstance(value, list):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    return str(value)


def go_quote(text: str) -> str:
    """Go's %q / strconv.Quote for a string."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif not ch.isprintable() and code > 0x7F:
            out.append("\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_value_sharp(value: Any) -> str:
    """Go's %#v for JSON-decoded scalars (strings quoted)."""
    if isinstance(value, str):
        return go_quote(value)
    return format_value(value)


def split_host_port(hostport: str) -> Tuple[str, str]:
    """Go's net.SplitHostPort; raises ValueError on the inputs Go rejects."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError("missing port in address")
        port = rest[1:]
        if "[" in host or "]" in port or "[" in port:
            raise ValueError("unexpected bracket in address")
        return host, port
    idx = hostport.rfind(":")
    if idx < 0:
        raise ValueError("missing port in address")
    host, port = hostport[:idx], hostport[idx + 1 :]
    if ":" in host:
        raise ValueError("too many colons in address")
    if "[" in host or "]" in host:
        raise ValueError("unexpected bracket in address")
    return host, port


def join_host_port(host: str, port: str) -> str:
    if ":" in host:
        return "[%s]:%s" % (host, port)
    return "%s:%s" % (host, port)


def human_bytes(size: int) -> str:
    """Ollama's format.HumanBytes (decimal units)."""
    for limit, unit in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB")):
        if size >= limit:
            value = size / limit
            if value >= 10 or value == math.trunc(value):
                return "%d %s" % (int(value), unit)
            return "%.1f %s" % (value, unit)
    return "%d B" % size


def human_number(count: int) -> str:
    """Ollama's format.HumanNumber (parameter counts such as 4.0B)."""
    for limit, unit, decimals in ((10**9, "B", 1), (10**6, "M", 2)):
        if count >= limit:
            value = count / limit
            if value == math.floor(value):
                return "%.0f%s" % (value, unit)
            return "%.*f%s" % (decimals, value, unit)
    if count >= 1000:
        return "%.0fK" % (count / 1000)
    return str(count)


def _human_duration(seconds: float) -> str:
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return "%d seconds" % secs
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(round(seconds / 3600))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds // 3600) // 24 // 365)


def human_time(ts: Optional[float], zero_value: str) -> str:
    """Ollama's format.HumanTime ("2 minutes ago", "4 minutes from now", "Forever")."""
    if ts is None:
        return zero_value
    delta = time.time() - ts
    if int(delta / 3600) // 24 // 365 < -20:
        return "Forever"
    if delta < 0:
        return _human_duration(-delta) + " from now"
    return _human_duration(delta) + " ago"


def parse_rfc3339(text: str) -> float:
    """Parse the timestamps the server emits back into a UNIX timestamp."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, _, rest = text.partition(".")
    if rest:
        frac = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            frac += rest[i]
            i += 1
        text = main + "." + (frac[:6].ljust(6, "0")) + rest[i:]
    try:
        return _dt.datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError):
        return float("inf")
