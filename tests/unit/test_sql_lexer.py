from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_cortex.sql.lexer import lex, scan_query


@pytest.mark.parametrize(
    ("text", "multi", "trailing", "line_comment", "unterminated"),
    [
        ("SELECT 1", False, False, False, None),
        ("SELECT 1;", False, True, False, None),
        ("SELECT 1 ;  \n -- done\n", False, True, False, None),
        ("SELECT 1; SELECT 2", True, False, False, None),
        ("; SELECT 1", True, False, False, None),
        ("SELECT ';' AS x", False, False, False, None),
        ("SELECT 'it''s; fine'", False, False, False, None),
        ("SELECT 'back\\'slash;'", False, False, False, None),
        ('SELECT 1 AS "a;b"', False, False, False, None),
        ("SELECT $$;$$", False, False, False, None),
        ("SELECT 1 /* ; */", False, False, False, None),
        ("SELECT 1 -- note", False, False, True, None),
        ("SELECT 1 // note", False, False, True, None),
        ("SELECT 1 -- note\n", False, False, False, None),
        ("SELECT 'open", False, False, False, "string literal starting at offset 7"),
        ('SELECT "open', False, False, False, "quoted identifier starting at offset 7"),
        ("SELECT $$open", False, False, False, "$$ string starting at offset 7"),
        ("SELECT 1 /* open", False, False, False, "/* comment starting at offset 9"),
        ("SELECT 'a\\", False, False, False, "string literal starting at offset 7"),
    ],
)
def test_scan(text, multi, trailing, line_comment, unterminated):
    shape = scan_query(text)
    assert shape.code_after_separator is multi
    assert shape.trailing_separator is trailing
    assert shape.ends_in_line_comment is line_comment
    assert shape.unterminated == unterminated
    assert shape.has_code


@pytest.mark.parametrize("text", ["", "   \n", "-- only\n", "/* only */", ";"])
def test_no_code(text):
    assert not scan_query(text).has_code


@pytest.mark.parametrize(
    ("text", "unterminated"),
    [
        ("SELECT 'a'' b", "string literal starting at offset 7"),
        ("SELECT 'a''''", "string literal starting at offset 7"),
        ('SELECT "a"" b', "quoted identifier starting at offset 7"),
        ("SELECT 'a\\'", "string literal starting at offset 7"),
    ],
)
def test_doubled_quotes_never_end_a_token(text, unterminated):
    assert scan_query(text).unterminated == unterminated


def test_scales_to_megabyte_queries():
    body = "x\\'é;--/*" * 100_000
    shape = scan_query(f"SELECT '{body}' AS prompt, $${body}$$ AS completion")
    assert shape.has_code
    assert not shape.code_after_separator
    assert shape.unterminated is None


def test_doubled_quote_before_the_closing_one():
    assert scan_query("SELECT 'a''' AS x").unterminated is None


@given(st.text())
def test_lexemes_cover_any_text_exactly_in_order(text):
    lexemes = list(lex(text))
    assert "".join(text[x.start : x.end] for x in lexemes) == text
    assert all(a.end == b.start for a, b in pairwise(lexemes))
    assert all(x.unterminated is None for x in lexemes[:-1])


def test_lexeme_kinds():
    text = "SELECT 'a;b' /* c */ -- d\n; $$e$$"
    kinds = [(x.kind, text[x.start : x.end]) for x in lex(text)]
    assert kinds == [
        ("text", "SELECT "),
        ("quoted", "'a;b'"),
        ("text", " "),
        ("block_comment", "/* c */"),
        ("text", " "),
        ("line_comment", "-- d\n"),
        ("separator", ";"),
        ("text", " "),
        ("quoted", "$$e$$"),
    ]


@pytest.mark.parametrize(
    ("text", "stray_close", "open_parens"),
    [
        ("SELECT f(a, (b)) AS prompt FROM (SELECT 1)", None, 0),
        ("SELECT ')' AS p, \")\" AS c, $$)$$ FROM t /* ) */ -- )\n", None, 0),
        ("SELECT a FROM t) UNION ALL (SELECT b", 15, 0),
        ("SELECT a FROM t) x JOIN (SELECT 1", 15, 0),
        ("SELECT (a FROM t", None, 1),
        ("SELECT ((a) FROM t", None, 1),
        (")(", 0, 0),
    ],
)
def test_parentheses_must_stay_inside_the_wrapper(text, stray_close, open_parens):
    shape = scan_query(text)
    assert shape.stray_close == stray_close
    assert shape.open_parens == open_parens
