"""The page's language catalogs (web/locales/<code>.json) and the code that uses them.

Every catalog has every key, with the same placeholders and the plural forms its language needs;
every key the page uses exists and every key exists because the page uses it; and no text a person
sees is left as a string in web/app.js, web/index.html or web/hushdrop/page/*.py, where it would
show in English whatever the chosen language (so later additions cannot slip past the catalogs).
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from html.parser import HTMLParser
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
LOCALES = WEB / "locales"
CODES = sorted(path.stem for path in LOCALES.glob("*.json"))
PAGE_PYTHON = sorted((WEB / "hushdrop" / "page").glob("*.py"))
SCRIPTS = [
    WEB / name
    for name in ("app.js", "i18n.js", "engine.js", "engine-worker.js", "views.js", "direct.js")
]
PAGES = [WEB / "index.html"]

# CLDR's plural categories for whole numbers in each language (Intl.PluralRules chooses among
# them in the page); a plural message needs each one.
PLURAL_FORMS = {
    "en": {"one", "other"},
    "de": {"one", "other"},
    "uk": {"one", "few", "many", "other"},
    "fr": {"one", "many", "other"},
    "es": {"one", "many", "other"},
}
PLACEHOLDER = re.compile(r"\{([a-zA-Z0-9_]+)\}")
KEY = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+$")
# Marks a call (Python) or a line (JavaScript) whose strings are no page text: words sent to the
# peer ("wire"), which its page or CLI shows as they are; the core's own errors ("core"), shown
# through `error.detail`; names that read the same in every language ("name": a command, a
# language's own name).
EXEMPT_MARK = re.compile(r"(#|//)\s*i18n:\s*(wire|core|name)\b")
# Names, not words: the same in every language.
NAMES = {"Hushdrop"}


def catalog(code: str) -> dict[str, object]:
    return json.loads((LOCALES / f"{code}.json").read_text(encoding="utf-8"))


def forms(message: object) -> list[str]:
    return list(message.values()) if isinstance(message, dict) else [message]


def placeholders(message: object) -> set[str]:
    return {name for text in forms(message) for name in PLACEHOLDER.findall(text)}


def test_the_five_languages_are_there():
    assert {"en", "de", "uk", "fr", "es"} <= set(CODES)
    assert set(CODES) == set(PLURAL_FORMS)


@pytest.mark.parametrize("code", CODES)
def test_every_catalog_has_exactly_the_english_keys(code):
    assert set(catalog(code)) == set(catalog("en"))


@pytest.mark.parametrize("code", CODES)
def test_every_message_has_the_english_placeholders(code):
    english = catalog("en")
    for key, message in catalog(code).items():
        assert placeholders(message) == placeholders(english[key]), (code, key)


@pytest.mark.parametrize("code", CODES)
def test_plural_messages_have_every_form_of_their_language(code):
    english = catalog("en")
    for key, message in catalog(code).items():
        assert isinstance(message, dict) == isinstance(english[key], dict), (code, key)
        if isinstance(message, dict):
            assert set(message) == PLURAL_FORMS[code], (code, key)
            assert "count" in placeholders(message), key  # what chooses the form


@pytest.mark.parametrize("code", CODES)
def test_messages_are_translated_text(code):
    for key, message in catalog(code).items():
        for text in forms(message):
            assert isinstance(text, str) and text.strip(), (code, key)


@pytest.mark.parametrize("code", CODES)
def test_the_language_control_says_language_in_english_too(code):
    # Someone who cannot read the page's language still finds the control by this word.
    assert "Language" in catalog(code)["language.label"]


# Messages that read the same in some language: unit symbols, "Code" (de, fr).
SAME_AS_ENGLISH = {"home.code", "unit.kib", "unit.mib", "unit.gib", "unit.tib"}


@pytest.mark.parametrize("code", [code for code in CODES if code != "en"])
def test_the_translations_are_not_left_in_english(code):
    english = catalog("en")
    untranslated = {
        key
        for key, message in catalog(code).items()
        if message == english[key]
        and re.search(r"[A-Za-z]{3,}", PLACEHOLDER.sub("", json.dumps(message)))
    }
    assert untranslated <= SAME_AS_ENGLISH


def test_i18n_js_knows_every_catalog():
    script = (WEB / "i18n.js").read_text()
    files = dict(re.findall(r'^\s*(\w+): "locales/(\w+)\.json",$', script, re.MULTILINE))
    assert all(code == name for code, name in files.items())
    assert sorted(files) == CODES
    languages = re.findall(r'\{ code: "(\w+)", name: "[^"]+" \}', script)
    assert sorted(languages) == CODES


# ------------------------------------------------------------------------- keys in the code


def python_strings(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, exempt) of every string constant in a Python file, f-strings' literal parts
    included, docstrings left out."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    marked = {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and EXEMPT_MARK.search(token.string)
    }
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    exempt: set[int] = set()
    for node in ast.walk(tree):
        # A marked call, or a marked simple statement (one without a body of its own).
        simple = isinstance(node, ast.stmt) and not hasattr(node, "body")
        if not (isinstance(node, ast.Call) or simple):
            continue
        lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        console = isinstance(node, ast.Call) and ast.unparse(node.func).startswith("js.console.")
        if lines & marked or console:
            exempt.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if text and id(node) not in docstrings:
            found.append((node.lineno, node.value, id(node) in exempt))
    return found


JS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\]|\\.)*`', re.DOTALL)
JS_COMMENT = re.compile(r"(?<![:\"'\\])//[^\n]*|/\*.*?\*/", re.DOTALL)


def js_strings(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, exempt) of a script's string and template literals (the template's literal
    parts), comments left out; strings in console.* calls are exempt (for developers)."""
    source = path.read_text(encoding="utf-8")
    found = []
    position = 0
    while True:
        string = JS_STRING.search(source, position)
        comment = JS_COMMENT.search(source, position)
        if comment and (not string or comment.start() < string.start()):
            position = comment.end()
            continue
        if not string:
            return found
        line = source.count("\n", 0, string.start()) + 1
        text = string.group(0)[1:-1]
        if string.group(0).startswith("`"):
            text = re.sub(r"\$\{[^}]*\}", " ", text)
        start = source.rfind("\n", 0, string.start()) + 1
        end = source.find("\n", string.end())
        statement = source[start : string.start()]
        marked = EXEMPT_MARK.search(source[start:end]) is not None
        found.append((line, text, "console." in statement or marked))
        position = string.end()


def html_keys(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    keys = set(re.findall(r'data-i18n="([^"]+)"', text))
    for attributes in re.findall(r'data-i18n-attr="([^"]+)"', text):
        keys.update(pair.split(":", 1)[1] for pair in attributes.split())
    return keys


def namespaces() -> set[str]:
    return {key.split(".")[0] for key in catalog("en")}


def message_calls() -> set[str]:
    """The keys named where a message is made, whatever their namespace: `t("key", …)` in the
    page's Python and scripts, and the HTML's data-i18n attributes."""
    keys: set[str] = set()
    for path in PAGE_PYTHON:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                keys.add(node.args[0].value)
    for path in SCRIPTS:
        keys.update(re.findall(r'\bt\(\s*"([^"]+)"', path.read_text(encoding="utf-8")))
    for path in PAGES:
        keys.update(html_keys(path))
    return keys


def keys_in_code() -> set[str]:
    """Every key the page uses: made into a message where it is named, or kept in a table (a
    string shaped like a key, in one of the catalogs' namespaces)."""
    spaces = namespaces()
    keys: set[str] = set()
    for path in PAGE_PYTHON:
        keys.update(text for _, text, _ in python_strings(path) if KEY.match(text))
    for path in SCRIPTS:
        keys.update(text for _, text, _ in js_strings(path) if KEY.match(text))
    return {key for key in keys if key.split(".")[0] in spaces} | message_calls()


def test_every_key_the_page_uses_is_in_the_catalogs():
    assert keys_in_code() - set(catalog("en")) == set()


def test_every_key_in_the_catalogs_is_used():
    assert set(catalog("en")) - keys_in_code() == set()


# ------------------------------------------------------------------------- no text in code


def looks_like_text(text: str) -> bool:
    """A person's words, not a name the code uses (an event, a class, a key, a path, a type)."""
    text = text.strip()
    if not re.search(r"[A-Za-z]", text) or text in NAMES or KEY.match(text):
        return False
    words = re.findall(r"[A-Za-z][A-Za-z'’-]*", text)
    if len(words) == 1:
        # One capitalised word ("Declined", "Copied"); camelCase and CONSTANTS are code.
        return bool(re.fullmatch(r"[A-Z][a-z]+[.!?…:]?", text))
    if all(re.fullmatch(r"[a-z][a-z0-9-]*", word) for word in text.split()):
        return False  # a class list, an attribute list ("icon icon-folder")
    return bool(re.search(r"[A-Za-z]{2,}[\s,]+[A-Za-z]{2,}", text))


def test_looks_like_text_tells_words_from_names():
    assert looks_like_text("Sending cancelled")
    assert looks_like_text("Declined")
    assert looks_like_text("they chose not to download them.")
    for name in [
        "click",
        "send-template",
        "icon icon-folder",
        "files.summary",
        "AbortError",
        "application/zip",
        "Hushdrop",
        "u8",
        "#\\d{6}[-_ ]",
    ]:
        assert not looks_like_text(name), name


def test_no_visible_text_left_in_the_page_python():
    left = [
        f"{path.name}:{line}: {text!r}"
        for path in PAGE_PYTHON
        for line, text, exempt in python_strings(path)
        if not exempt and looks_like_text(text)
    ]
    assert left == []


def test_no_visible_text_left_in_the_scripts():
    left = [
        f"{path.name}:{line}: {text!r}"
        for path in SCRIPTS
        for line, text, exempt in js_strings(path)
        if not exempt and looks_like_text(text)
    ]
    assert left == []


class _TextScan(HTMLParser):
    """Text and labelling attributes in a page that no catalog message covers."""

    VISIBLE_ATTRIBUTES = frozenset({"aria-label", "placeholder", "alt", "title", "content"})
    # No script runs in a <noscript> (it stays English); code and the brand are names.
    UNTRANSLATED = frozenset({"noscript", "code", "script", "style"})
    VOID = frozenset({"meta", "link", "img", "input", "br", "hr", "source", "path"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, its text is a message)
        self.left: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        covered = {
            pair.split(":", 1)[0] for pair in (attributes.get("data-i18n-attr") or "").split()
        }
        for name in self.VISIBLE_ATTRIBUTES & set(attributes):
            if name == "content" and attributes.get("name") != "description":
                continue
            if name not in covered and looks_like_text(attributes[name] or ""):
                self.left.append(f"<{tag} {name}={attributes[name]!r}>")
        if tag not in self.VOID:
            self.stack.append((tag, "data-i18n" in attributes))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.stack or self.stack[-1][1] or not data.strip():
            return
        if any(tag in self.UNTRANSLATED for tag, _ in self.stack):
            return
        if looks_like_text(data) and data.strip() not in NAMES:
            self.left.append(f"{self.stack[-1][0]}: {data.strip()!r}")


def test_no_visible_text_left_in_the_pages():
    for page in PAGES:
        scan = _TextScan()
        scan.feed(page.read_text(encoding="utf-8"))
        assert scan.left == [], page.name
