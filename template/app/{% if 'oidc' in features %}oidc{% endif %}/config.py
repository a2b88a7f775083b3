"""The OpenID providers users may sign in with (OIDC_PROVIDERS, a JSON list)."""

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

PROVIDER_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class OidcProvider(BaseModel):
    """`{"name", "issuer", "client_id", "client_secret", "scopes"}`: the app's client at the
    provider; its redirect URI is `{OIDC_REDIRECT_BASE_URL}/api/v1/auth/oidc/{name}/callback`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROVIDER_NAME)
    issuer: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: tuple[str, ...] = ("openid", "email", "profile")

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("issuer must be the provider's https URL (its iss claim)")
        return value.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _need_openid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("scopes must include openid")
        return value
