"""`hushdrop completion bash|zsh|fish`: shell completion scripts, generated from the argparse
parser itself, so a new command or option is completed as soon as it exists.

Each script completes the commands, each command's options, and what an option or argument
takes where that is known: folders for -o, files for `send`'s paths, the shells for
`completion`. Codes are never completed from the shell (they are typed at hushdrop's own prompt,
which completes their words without putting them in the shell's history).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    takes_value: bool
    value: str  # "dir", "file", "none" (free text), or "choice"
    choices: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]
    arguments: str  # what positional arguments are: "file", "dir", "choice", "none"
    choices: tuple[str, ...]


SUMMARY_LENGTH = 72
# Options whose value is a file or folder though their metavar does not say so (`serve`'s).
_FILE_DESTS = ("tls_cert", "tls_key")


def _kind(action: argparse.Action) -> str:
    if action.choices:
        return "choice"
    metavar = (action.metavar or action.dest or "").upper()
    if metavar in ("DIR", "FOLDER") or metavar.endswith("_DIR"):
        return "dir"
    if metavar in ("PATH", "FILE") or action.dest in _FILE_DESTS:
        return "file"
    return "none"


def _summary(text: str | None) -> str:
    """The help's first clause, whole words, at most SUMMARY_LENGTH characters; each shell's
    script quotes it for its own syntax."""
    text = (text or "").replace("%(default)s", "").split(";")[0].split(" (")[0]
    text = " ".join(text.split())
    if len(text) > SUMMARY_LENGTH:
        text = text[: SUMMARY_LENGTH - 1].rsplit(" ", 1)[0].rstrip(",.:") + "…"
    return text


def commands(
    parser: argparse.ArgumentParser,
    delegated: dict[str, argparse.ArgumentParser] | None = None,
) -> tuple[list[Option], list[Command]]:
    """The top-level options and every command, read from the parser. `delegated`: the
    parsers of commands that hand their arguments on (`serve` to the relay's own parser)."""
    top: list[Option] = []
    found: list[Command] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                real = (delegated or {}).get(name, sub)
                found.append(_command(name, helps.get(name), real))
        elif action.option_strings:
            top.append(_option(action))
    return top, found


def _option(action: argparse.Action) -> Option:
    return Option(
        tuple(action.option_strings),
        action.nargs != 0,
        _kind(action),
        tuple(map(str, action.choices or ())),
        _summary(action.help),
    )


def _command(name: str, help_text: str | None, sub: argparse.ArgumentParser) -> Command:
    options = [
        _option(a)
        for a in sub._actions
        if a.option_strings and a.help != argparse.SUPPRESS and "\0" not in sub.prefix_chars
    ]
    positionals = [a for a in sub._actions if not a.option_strings]
    kinds = {_kind(a) for a in positionals}
    arguments = "file" if "file" in kinds else next(iter(kinds), "none")
    choices = tuple(str(c) for a in positionals for c in (a.choices or ()))
    if "\0" in sub.prefix_chars:  # hands its arguments on, to a parser we were not given
        arguments = "none"
    return Command(name, _summary(help_text), tuple(options), arguments, choices)


def script(
    shell: str,
    parser: argparse.ArgumentParser,
    delegated: dict[str, argparse.ArgumentParser] | None = None,
) -> str:
    top, found = commands(parser, delegated)
    prog = parser.prog
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](prog, top, found)


def _words(options: list[Option] | tuple[Option, ...]) -> str:
    return " ".join(name for option in options for name in option.names)


# Names one per line (IFS), so "sp ace dir" stays one; `-o filenames` has bash quote them and
# end folders with a slash.
_BASH_FILES = (
    "local IFS=$'\\n'; compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\"))"
)
_BASH_DIRS = (
    "local IFS=$'\\n'; compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- \"$cur\"))"
)


def _bash(prog: str, top: list[Option], found: list[Command]) -> str:
    func = "_" + re.sub(r"\W", "_", prog)
    names = " ".join(c.name for c in found)
    cases = []
    for command in found:
        values = [o for o in command.options if o.takes_value]
        value_cases = "".join(
            f"                {'|'.join(o.names)}) "
            + {
                "dir": _BASH_DIRS,
                "file": _BASH_FILES,
                "choice": f'COMPREPLY=($(compgen -W "{" ".join(o.choices)}" -- "$cur"))',
            }.get(o.value, "COMPREPLY=()")
            + "; return;;\n"
            for o in values
        )
        positional = {
            "file": _BASH_FILES,
            "dir": _BASH_DIRS,
            "choice": f'COMPREPLY=($(compgen -W "{" ".join(command.choices)}" -- "$cur"))',
        }.get(command.arguments, "COMPREPLY=()")
        cases.append(
            f"        {command.name})\n"
            f'            case "$prev" in\n{value_cases}            esac\n'
            f'            if [[ "$cur" == -* ]]; then\n'
            f'                COMPREPLY=($(compgen -W "{_words(command.options)}" -- "$cur"))\n'
            f"            else\n                {positional}\n            fi\n            ;;\n"
        )
    return (
        f"# bash completion for {prog}; generated by `{prog} completion bash`\n"
        f"{func}() {{\n"
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"\n'
        '    local command="" i\n'
        "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        '        case "${COMP_WORDS[i]}" in\n'
        f'            {"|".join(c.name for c in found)}) command="${{COMP_WORDS[i]}}"; break;;\n'
        "        esac\n    done\n"
        '    case "$command" in\n'
        '        "")\n'
        f'            COMPREPLY=($(compgen -W "{names} {_words(top)}" -- "$cur"))\n'
        "            ;;\n" + "".join(cases) + "    esac\n}\n"
        f"complete -F {func} {prog}\n"
    )


def _zsh_quoted(text: str) -> str:
    """`text` inside a single-quoted zsh word, and inside _arguments' [description]."""
    text = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return text.replace("'", "'\\''")


def _zsh_option(option: Option) -> str:
    action = {
        "dir": "_files -/",
        "file": "_files",
        "choice": f"({' '.join(option.choices)})",
    }.get(option.value, " ")
    value = f":{option.names[-1].lstrip('-')}:{action}" if option.takes_value else ""
    names = option.names
    if len(names) > 1:
        exclusive = f"({' '.join(names)})"
        return f"'{exclusive}'{{{','.join(names)}}}'[{_zsh_quoted(option.help)}]{value}'"
    return f"'{names[0]}[{_zsh_quoted(option.help)}]{value}'"


def _zsh(prog: str, top: list[Option], found: list[Command]) -> str:
    func = "_" + re.sub(r"\W", "_", prog)
    described = "\n".join(f"        '{c.name}:{_zsh_quoted(c.help)}'" for c in found)
    cases = []
    for command in found:
        specs = [_zsh_option(o) for o in command.options]
        positional = {
            "file": "'*:path:_files'",
            "dir": "'*:folder:_files -/'",
            "choice": f"'1:shell:({' '.join(command.choices)})'",
        }.get(command.arguments)
        if positional:
            specs.append(positional)
        body = " \\\n                ".join(specs) if specs else "'*: :'"
        cases.append(
            f"            {command.name})\n                _arguments {body}\n            ;;\n"
        )
    top_specs = " \\\n        ".join(_zsh_option(o) for o in top)
    return (
        f"#compdef {prog}\n# zsh completion for {prog}; generated by `{prog} completion zsh`\n"
        f"{func}() {{\n"
        "    local context state state_descr line\n    typeset -A opt_args\n"
        f"    _arguments -C \\\n        {top_specs} \\\n"
        "        '1:command:->command' \\\n        '*::argument:->argument'\n"
        "    case $state in\n"
        "    command)\n        local -a commands\n        commands=(\n"
        f"{described}\n        )\n        _describe -t commands '{prog} command' commands\n"
        "        ;;\n"
        "    argument)\n        case $line[1] in\n" + "".join(cases) + "        esac\n"
        "        ;;\n    esac\n}\n"
        f'if [[ "$funcstack[1]" == "{func}" ]]; then\n    {func} "$@"\n'
        f"else\n    compdef {func} {prog}\nfi\n"
    )


def _fish_quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(prog: str, top: list[Option], found: list[Command]) -> str:
    lines = [
        f"# fish completion for {prog}; generated by `{prog} completion fish`",
        f"complete -c {prog} -e",
        f"complete -c {prog} -f",
    ]
    names = " ".join(c.name for c in found)

    def option_line(condition: str, option: Option) -> str:
        parts = [f"complete -c {prog} -n '{condition}'"]
        for name in option.names:
            parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
        if option.takes_value:
            parts.append("-r")
            parts.append(
                {
                    "dir": "-f -a '(__fish_complete_directories)'",
                    "file": "-F",
                    "choice": f"-f -a '{' '.join(option.choices)}'",
                }.get(option.value, "-f")
            )
        parts.append(f"-d {_fish_quoted(option.help)}")
        return " ".join(parts)

    for option in top:
        lines.append(option_line("__fish_use_subcommand", option))
    for command in found:
        lines.append(
            f"complete -c {prog} -n '__fish_use_subcommand' -a {command.name} "
            f"-d {_fish_quoted(command.help)}"
        )
        condition = f"__fish_seen_subcommand_from {command.name}"
        for option in command.options:
            lines.append(option_line(condition, option))
        if command.arguments == "file":
            lines.append(f"complete -c {prog} -n '{condition}' -F")
        elif command.arguments == "dir":
            lines.append(f"complete -c {prog} -n '{condition}' -a '(__fish_complete_directories)'")
        elif command.arguments == "choice":
            lines.append(f"complete -c {prog} -n '{condition}' -a '{' '.join(command.choices)}'")
    del names
    return "\n".join(lines) + "\n"
