"""Modelfile parsing (client side, like Ollama's parser package) and rendering."""

from typing import Any, Dict, List, Optional, Tuple

from . import gofmt

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", "requires")
ROLES = ("system", "user", "assistant")
DEPRECATED = ("penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock", "mirostat", "mirostat_tau", "mirostat_eta")

# api.Options field types, used to type PARAMETER values like api.FormatParams.
INT_PARAMS = ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "draft_num_predict")
FLOAT_PARAMS = ("top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty")
BOOL_PARAMS = ("use_mmap",)
LIST_PARAMS = ("stop",)

Command = Tuple[str, str]  # (name, args)


class ParseError(ValueError):
    pass


class _ErrUnexpectedEOF(Exception):
    pass


def _is_space(ch: str) -> bool:
    return ch in " \t"


def _is_newline(ch: str) -> bool:
    return ch in "\r\n"


def _is_alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def unquote(text: str) -> Tuple[str, bool]:
    if text.startswith('"""'):
        if len(text) >= 6 and text.endswith('"""'):
            return text[3:-3], True
        return "", False
    if text.startswith('"'):
        if len(text) >= 2 and text.endswith('"'):
            return text[1:-1], True
        return "", False
    return text, True


def quote(text: str) -> str:
    if "\n" in text or text.startswith(" ") or text.endswith(" "):
        if '"' in text:
            return '"""' + text + '"""'
        return '"' + text + '"'
    return text


NIL, NAME, VALUE, PARAMETER, MESSAGE, COMMENT = range(6)


def _next_state(ch: str, state: int) -> Tuple[int, Optional[str]]:
    """parseRuneForState: returns (next state, rune to keep or None)."""
    if state == NIL:
        if ch == "#":
            return COMMENT, None
        if _is_space(ch) or _is_newline(ch):
            return NIL, None
        return NAME, ch
    if state == NAME:
        if _is_alpha(ch):
            return NAME, ch
        if _is_space(ch):
            return VALUE, None
        raise ParseError('command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", or "requires"')
    if state == VALUE:
        if _is_newline(ch) or _is_space(ch):
            return NIL, ch
        return VALUE, ch
    if state in (PARAMETER, MESSAGE):
        if _is_alpha(ch) or (state == PARAMETER and (ch.isdigit() or ch == "_")):
            return state, ch
        if _is_space(ch):
            return VALUE, None
        raise _ErrUnexpectedEOF()
    if state == COMMENT:
        return (NIL, None) if _is_newline(ch) else (COMMENT, None)
    raise ParseError("")


def parse(text: str) -> List[Command]:
    """ParseFile: the same state machine as Ollama's Modelfile parser."""
    if text.startswith("\ufeff"):
        text = text[1:]
    commands: List[Command] = []
    state, line, buf, role, name = NIL, 1, "", "", ""
    for ch in text:
        if _is_newline(ch):
            line += 1
        try:
            nxt, keep = _next_state(ch, state)
        except _ErrUnexpectedEOF:
            raise ParseError("unexpected EOF: %s" % buf) from None
        except ParseError as exc:
            raise ParseError("(line %d): %s" % (line, exc)) from None
        if nxt != state:
            if state == NAME:
                word = buf.lower()
                if word not in COMMANDS:
                    raise ParseError('(line %d): command must be one of "from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter", "message", or "requires"' % line)
                if word == "from":
                    name = "model"
                elif word == "parameter":
                    nxt = PARAMETER
                elif word == "message":
                    nxt = MESSAGE
                    name = word
                else:
                    name = word
            elif state == PARAMETER:
                name = buf
            elif state == MESSAGE:
                if buf not in ROLES:
                    raise ParseError('(line %d): message role must be one of "system", "user", or "assistant"' % line)
                role = buf
            elif state == VALUE:
                value, ok = unquote(buf.strip())
                if not ok or _is_space(ch):
                    buf += ch
                    continue
                if role:
                    value, role = role + ": " + value, ""
                commands.append((name, value))
            buf = ""
            state = nxt
        if keep is not None and keep.isprintable():
            buf += keep
    if state == VALUE:
        value, ok = unquote(buf.strip())
        if not ok:
            raise ParseError("unexpected EOF")
        if role:
            value = role + ": " + value
        commands.append((name, value))
    elif state not in (NIL, COMMENT):
        raise ParseError("unexpected EOF")
    if not any(cmd == "model" for cmd, _ in commands):
        raise ParseError("no FROM line")
    return commands


def format_param(key: str, value: str) -> Any:
    """api.FormatParams for one PARAMETER line."""
    if key in INT_PARAMS:
        try:
            return int(value, 10)
        except ValueError:
            raise ParseError("invalid int value [%s]" % value) from None
    if key in FLOAT_PARAMS:
        try:
            return float(value)
        except ValueError:
            raise ParseError("invalid float value [%s]" % value) from None
    if key in BOOL_PARAMS:
        if value in ("1", "t", "T", "TRUE", "true", "True"):
            return True
        if value in ("0", "f", "F", "FALSE", "false", "False"):
            return False
        raise ParseError("invalid bool value [%s]" % value)
    if key in LIST_PARAMS:
        return [value]
    raise ParseError("unknown parameter '%s'" % key)


def render_command(name: str, args: str) -> str:
    if name == "model":
        return "FROM " + args
    if name in ("license", "template", "system", "adapter", "renderer", "parser", "requires", "draft"):
        return "%s %s" % (name.upper(), quote(args))
    if name == "message":
        role, _, message = args.partition(": ")
        return "MESSAGE %s %s" % (role, quote(message))
    return "PARAMETER %s %s" % (name, quote(args))


def render(commands: List[Command]) -> str:
    return "".join(render_command(name, args) + "\n" for name, args in commands)


def options_commands(options: Dict[str, Any]) -> List[Command]:
    out: List[Command] = []
    for key in sorted(options):
        value = options[key]
        for item in value if isinstance(value, list) else [value]:
            out.append((key, gofmt.format_value(item)))
    return out
