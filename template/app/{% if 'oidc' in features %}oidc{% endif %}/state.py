"""What the callback must find again (state, nonce, PKCE verifier, where to go, a link intent),
signed with SECRET_KEY into a short-lived HttpOnly cookie scoped to the callback path.

In a cookie, not in a process's memory: the callback may reach another worker process than the
one that started the sign-in. The browser holds its own verifier and nonce; the signature stops
it from changing any of them, and the state in the URL must match the cookie's (login CSRF).
"""

import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt

from app.core.errors import DomainError
from app.db.types import utcnow

ALGORITHM = "HS256"
PURPOSE = "oidc-state"
STATE_LIFETIME = timedelta(minutes=10)
COOKIE = "oidc_state"


class InvalidStateError(DomainError):
    """The callback's state is missing, expired, forged or not this browser's."""

    def __init__(self) -> None:
        super().__init__(
            "the sign-in's state is missing, expired or does not match this browser's: "
            "start the sign-in again"
        )


@dataclass(frozen=True)
class SignInState:
    provider: str
    state: str
    nonce: str
    code_verifier: str
    redirect_to: str
    link_user_id: uuid.UUID | None = None


class StateCookies:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def seal(self, state: SignInState) -> str:
        now = utcnow()
        claims = {
            "typ": PURPOSE,
            "iat": now,
            "exp": now + STATE_LIFETIME,
            "provider": state.provider,
            "state": state.state,
            "nonce": state.nonce,
            "verifier": state.code_verifier,
            "redirect_to": state.redirect_to,
            "link": str(state.link_user_id) if state.link_user_id else None,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def open(self, cookie: str | None, *, provider: str, state: str | None) -> SignInState:
        """The cookie's state when it is ours, unexpired, for `provider` and `state`."""
        if not cookie or not state:
            raise InvalidStateError
        try:
            claims = jwt.decode(
                cookie,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["exp", "iat", "typ", "state"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidStateError from exc
        if claims["typ"] != PURPOSE or claims.get("provider") != provider:
            raise InvalidStateError
        if not hmac.compare_digest(str(claims["state"]), state):
            raise InvalidStateError
        link = claims.get("link")
        return SignInState(
            provider=provider,
            state=state,
            nonce=str(claims["nonce"]),
            code_verifier=str(claims["verifier"]),
            redirect_to=str(claims["redirect_to"]),
            link_user_id=uuid.UUID(link) if link else None,
        )
