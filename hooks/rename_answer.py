"""Template migration: rename an answer in a project's answers file.

Used from `_migrations` in copier.yml at the `before` stage, offline:
    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/rename_answer.py",
              "{{ _copier_conf.answers_file }}", "old_name", "new_name"]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def rename(answers: Path, old: str, new: str) -> bool:
    """Rename the top-level key `old` to `new`; True when the file changed."""
    text = answers.read_text(encoding="utf-8")
    pattern = re.compile(rf"^{re.escape(old)}:", re.MULTILINE)
    renamed = pattern.sub(f"{new}:", text)
    if renamed == text:
        return False
    answers.write_text(renamed, encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: rename_answer.py ANSWERS_FILE OLD NEW", file=sys.stderr)
        return 2
    rename(Path(argv[0]), argv[1], argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
