"""One e-mail, checked when it is built: no header value an attacker could extend.

Header values (the recipient, the sender, the subject) refuse CR, LF and every other control
character, so that no text from a request can start a header of its own; bodies must be valid
text of a bounded size. `Email` is plain data (`as_dict`/`from_dict`), so it can be queued.
"""

from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid, parseaddr

ADDRESS_MAX_LENGTH = 320
SUBJECT_MAX_LENGTH = 200
BODY_MAX_CHARACTERS = 100_000


class UnsafeEmailError(ValueError):
    """A message that would carry a forged header, or text no mail can hold."""


def _check_header_value(value: str, what: str, max_length: int) -> str:
    if len(value) > max_length:
        raise UnsafeEmailError(f"the {what} is longer than {max_length} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise UnsafeEmailError(f"the {what} contains a control character (CR, LF, ...)")
    return value


def check_address(value: str, what: str = "address") -> str:
    """A bare address (`user@example.com`), safe to put in a header."""
    _check_header_value(value, what, ADDRESS_MAX_LENGTH)
    name, address = parseaddr(value)
    if name or address != value or "@" not in address:
        raise UnsafeEmailError(f"the {what} is not a plain e-mail address")
    return value


def check_sender(value: str) -> str:
    """`EMAIL_FROM`: an address, or `Display Name <address>`."""
    _check_header_value(value, "sender", ADDRESS_MAX_LENGTH)
    _, address = parseaddr(value)
    if "@" not in address:
        raise UnsafeEmailError("the sender is not an e-mail address (Name <user@example.com>)")
    return value


def _check_body(value: str, what: str) -> str:
    if len(value) > BODY_MAX_CHARACTERS:
        raise UnsafeEmailError(f"the {what} is longer than {BODY_MAX_CHARACTERS} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafeEmailError(f"the {what} is not valid text") from exc
    if "\x00" in value:
        raise UnsafeEmailError(f"the {what} contains a NUL character")
    return value


@dataclass(frozen=True)
class Email:
    """A message to one recipient, with a plain-text and an HTML part."""

    to: str
    subject: str
    text: str
    html: str

    def __post_init__(self) -> None:
        check_address(self.to, "recipient")
        _check_header_value(self.subject, "subject", SUBJECT_MAX_LENGTH)
        _check_body(self.text, "text part")
        _check_body(self.html, "HTML part")

    def to_mime(self, sender: str) -> EmailMessage:
        """The message as sent: From, To, Subject, Date, Message-ID; text, then HTML."""
        check_sender(sender)
        message = EmailMessage(policy=SMTP)
        message["From"] = sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2])
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "Email":
        return cls(to=data["to"], subject=data["subject"], text=data["text"], html=data["html"])
