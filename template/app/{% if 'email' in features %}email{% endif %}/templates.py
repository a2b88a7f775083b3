"""Messages from Jinja2 templates under `app/email/templates/`.

Each message is three files: `<name>.subject.j2` (one line), `<name>.text.j2` and
`<name>.html.j2`. HTML is autoescaped; a variable a template names but nobody passed is an
error (StrictUndefined), never an empty string in a mail.
"""

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.email.message import Email

TEMPLATES = Path(__file__).parent / "templates"


class EmailTemplates:
    def __init__(self, folder: Path = TEMPLATES, **defaults: Any) -> None:
        """`defaults` are given to every template (the project's name, the frontend's URL)."""
        self.environment = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.defaults = defaults

    def render(self, name: str, *, to: str, **context: Any) -> Email:
        values = {**self.defaults, **context}
        subject = self.environment.get_template(f"{name}.subject.j2").render(values)
        return Email(
            to=to,
            # One line, whatever the values held: control characters (CR and LF included) become
            # spaces, and runs of spaces one.
            subject=" ".join("".join(c if c.isprintable() else " " for c in subject).split()),
            text=self.environment.get_template(f"{name}.text.j2").render(values),
            html=self.environment.get_template(f"{name}.html.j2").render(values),
        )
