"""The one reader of yes/no answers, shared by the template's hooks and the backforge CLI.

Only the YAML booleans are answers to a yes/no question: `true`/`false`, `yes`/`no`, `on`/`off`,
`y`/`n` (with YAML's spellings: lower case, capitalised or upper case). Anything else -- `maybe`,
`flase`, `t`, `1` -- is refused with the question's name and the accepted values, never read as
true. Copier runs the hooks with its own interpreter from the template folder, where backforge
cannot be imported, so this file depends on the standard library only; backforge loads this
very file (`backforge.answers.parse_yes_no`) instead of keeping a copy.
"""

from __future__ import annotations

from typing import Final

_YES: Final = ("true", "yes", "on", "y")
_NO: Final = ("false", "no", "off", "n")


def _spellings(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(form for word in words for form in (word, word.capitalize(), word.upper()))


YES: Final = _spellings(_YES)
NO: Final = _spellings(_NO)
ACCEPTED: Final = ", ".join(f"{yes}/{no}" for yes, no in zip(_YES, _NO, strict=True))
"""The accepted values, as error messages name them: `true/false, yes/no, on/off, y/n`."""


def parse_yes_no(value: object, question: str) -> bool:
    """`value` as the answer to the yes/no question `question`; ValueError naming the question
    and the accepted values when it is not a YAML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip()
        if word in YES:
            return True
        if word in NO:
            return False
    raise ValueError(
        f"{question}: {value!r} is not a yes/no answer; accepted values: {ACCEPTED} (YAML booleans)"
    )
