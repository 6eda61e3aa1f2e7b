"""Unit tests of the Go-compatible parsing and formatting inside the stand-in."""

import pytest

from standin import envconfig, gofmt, modelfile, names


@pytest.mark.parametrize("value,expected", [
    ("", "http://127.0.0.1:11434"),
    ("0.0.0.0", "http://0.0.0.0:11434"),
    (":12345", "http://:12345"),
    ("example.com", "http://example.com:11434"),
    ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://example.com", "https://example.com:443"),
    ("[::1]:11434", "http://[::1]:11434"),
    ("[0001:002:003:0004::1]", "http://[1:2:3:4::1]:11434"),
    ("example.com:99999", "http://example.com:11434"),
    ("'127.0.0.1:8080'", "http://127.0.0.1:8080"),
    ("example.com:56789/path", "http://example.com:56789/path"),
])
def test_ollama_host_parsing(monkeypatch, value, expected):
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert envconfig.host().url() == expected


@pytest.mark.parametrize("value,expected", [("", 300), ("10m", 600), ("90", 90), ("-1", None), ("bogus", 300), ("0", 0)])
def test_keep_alive_env(monkeypatch, value, expected):
    monkeypatch.setenv("OLLAMA_KEEP_ALIVE", value)
    got = envconfig.keep_alive_ns()
    assert got == (gofmt.MAX_DURATION if expected is None else expected * gofmt.SECOND)


@pytest.mark.parametrize("text,full,short", [
    ("qwen3:4b", "registry.ollama.ai/library/qwen3:4b", "qwen3:4b"),
    ("qwen3", "registry.ollama.ai/library/qwen3:latest", "qwen3:latest"),
    ("me/model:v1", "registry.ollama.ai/me/model:v1", "me/model:v1"),
    ("mirror.lan:8080/library/qwen3:4b", "mirror.lan:8080/library/qwen3:4b", "mirror.lan:8080/library/qwen3:4b"),
    ("mirror.lan:8080/library/qwen3", "mirror.lan:8080/library/qwen3:latest", "mirror.lan:8080/library/qwen3:latest"),
])
def test_name_parsing(text, full, short):
    name = names.parse(text)
    assert name.is_valid() and name.full() == full and name.display_shortest() == short


def test_invalid_names():
    assert not names.parse("bad name").is_valid()
    assert not names.parse("a.b/model").is_valid()  # dots are not allowed in namespaces
    assert names.parse("http://h:1/ns/m:t").scheme == "http"


@pytest.mark.parametrize("text,ns", [("5m", 300 * 10**9), ("1h30m", 5400 * 10**9), ("1.5s", 1_500_000_000), ("300ms", 300_000_000), ("-2m", -120 * 10**9), ("0", 0)])
def test_parse_duration(text, ns):
    assert gofmt.parse_duration(text) == ns


@pytest.mark.parametrize("text,error", [("-1", 'time: missing unit in duration "-1"'), ("5d", 'time: unknown unit "d" in duration "5d"'), ("x", 'time: invalid duration "x"')])
def test_parse_duration_errors(text, error):
    with pytest.raises(ValueError) as info:
        gofmt.parse_duration(text)
    assert str(info.value) == error


@pytest.mark.parametrize("ns,text", [(300 * 10**9, "5m0s"), (3600 * 10**9, "1h0m0s"), (1_234_567, "1.234567ms"), (1500, "1.5\u00b5s"), (gofmt.MAX_DURATION, "2562047h47m16.854775807s")])
def test_duration_string(ns, text):
    assert gofmt.duration_string(ns) == text


@pytest.mark.parametrize("value,text", [(0.6, "0.6"), (20.0, "20"), (1e6, "1e+06"), (100000.0, "100000"), (1e-5, "1e-05"), (0.0001, "0.0001")])
def test_go_float_format(value, text):
    assert gofmt.format_float(value) == text


def test_human_formats():
    assert gofmt.human_bytes(2_497_278_240) == "2.5 GB"
    assert gofmt.human_bytes(52_000_000) == "52 MB"
    assert gofmt.human_bytes(999) == "999 B"
    assert gofmt.human_number(4_022_468_096) == "4.0B"
    assert gofmt.human_number(8_000_000_000) == "8B"


def test_modelfile_parser():
    text = 'FROM qwen3:4b\nSYSTEM """line one\nline "two"\n"""\nTEMPLATE "{{ .Prompt }}"\nPARAMETER num_ctx 4096\nMESSAGE user hi there\n# trailing comment\n'
    cmds = modelfile.parse(text)
    assert cmds == [
        ("model", "qwen3:4b"),
        ("system", 'line one\nline "two"\n'),
        ("template", "{{ .Prompt }}"),
        ("num_ctx", "4096"),
        ("message", "user: hi there"),
    ]
    assert modelfile.format_param("num_ctx", "4096") == 4096
    assert modelfile.render_command("system", 'a\n"b"') == 'SYSTEM """a\n"b""""'


@pytest.mark.parametrize("text,error", [
    ("PARAMETER x 1\n", "no FROM line"),
    ("FROM x\nBOGUS y\n", 'command must be one of'),
    ("FROM x\nMESSAGE robot hi\n", 'message role must be one of'),
    ('FROM x\nSYSTEM """never closed\n', "unexpected EOF"),
])
def test_modelfile_parser_errors(text, error):
    with pytest.raises(modelfile.ParseError) as info:
        modelfile.parse(text)
    assert error in str(info.value)
