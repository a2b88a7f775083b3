"""One OpenID provider as the app's client sees it: discovery, keys, and the code flow's requests.

The discovery document (the issuer's /.well-known/openid-configuration) is read once per process
and kept for DISCOVERY_SECONDS. The provider's keys (JWKS) are kept until a token names a key
id not among them: a provider that rotated its keys publishes the new one first, so the set is
read again, at most once per JWKS_REFETCH_SECONDS (a flood of tokens with made-up key ids makes
no flood of requests to the provider). ID tokens are verified with PyJWT: signature by a key of
the set, with an asymmetric algorithm the provider announces; issuer, audience (and the
authorized party when there are several), expiry, issue time, and the nonce of this sign-in.
"""

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from app.core.errors import AuthenticationError, DomainError, ServiceUnavailableError
from app.oidc.config import OidcProvider

DISCOVERY_SECONDS = 3600.0
JWKS_REFETCH_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 5.0
CLOCK_SKEW_SECONDS = 60
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
BAD_ID_TOKEN = "the provider's ID token did not verify"  # noqa: S105 - a message, not a secret


class ProviderUnavailableError(ServiceUnavailableError):
    def __init__(self, name: str) -> None:
        super().__init__(f"the sign-in provider {name} did not answer; retry shortly")


class ProviderRefusedError(DomainError):
    """The provider refused the code (used already, expired, issued to another client)."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__(f"the sign-in provider {name} refused the sign-in ({error}): start again")


@dataclass(frozen=True)
class Discovery:
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: frozenset[str]


class ProviderClient:
    def __init__(self, provider: OidcProvider, redirect_uri: str) -> None:
        self.provider = provider
        self.redirect_uri = redirect_uri
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_read_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.provider.name

    async def _get(self, url: str, **kwargs: Any) -> Any:
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
                response = await http.get(url, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailableError(self.name) from exc

    async def discovery(self) -> Discovery:
        if self._discovery is None or time.monotonic() - self._discovered_at > DISCOVERY_SECONDS:
            url = f"{self.provider.issuer}/.well-known/openid-configuration"
            document = await self._get(url)
            if document.get("issuer", "").rstrip("/") != self.provider.issuer:
                raise ProviderUnavailableError(self.name)  # not the issuer configured
            self._discovery = Discovery(
                authorization_endpoint=document["authorization_endpoint"],
                token_endpoint=document["token_endpoint"],
                jwks_uri=document["jwks_uri"],
                userinfo_endpoint=document.get("userinfo_endpoint"),
                algorithms=frozenset(document.get("id_token_signing_alg_values_supported", []))
                & ASYMMETRIC,
            )
            self._discovered_at = time.monotonic()
        return self._discovery

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        discovery = await self.discovery()
        url: str = prepare_grant_uri(
            discovery.authorization_endpoint,
            self.provider.client_id,
            "code",
            redirect_uri=self.redirect_uri,
            scope=" ".join(self.provider.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return url

    async def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The token response for an authorization code (the client authenticates with its
        secret, HTTP Basic; the PKCE verifier proves this client started the flow)."""
        discovery = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        secret = self.provider.client_secret.get_secret_value()
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
                response = await http.post(
                    discovery.token_endpoint, data=form, auth=(self.provider.client_id, secret)
                )
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailableError(self.name) from exc
        if response.status_code >= 500:
            raise ProviderUnavailableError(self.name)
        if response.status_code != 200 or "id_token" not in body:
            raise ProviderRefusedError(self.name, str(body.get("error", response.status_code)))
        return body

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        discovery = await self.discovery()
        if discovery.userinfo_endpoint is None:
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        claims: dict[str, Any] = await self._get(discovery.userinfo_endpoint, headers=headers)
        return claims

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        async with self._lock:
            if kid not in self._keys and self._may_read_keys():
                discovery = await self.discovery()
                document = await self._get(discovery.jwks_uri)
                self._keys_read_at = time.monotonic()
                try:
                    keys = jwt.PyJWKSet.from_dict(document).keys
                except jwt.PyJWTError as exc:  # no key this client can use
                    raise ProviderUnavailableError(self.name) from exc
                self._keys = {str(key.key_id): key for key in keys if key.key_id}
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            if kid not in self._keys:
                raise AuthenticationError(BAD_ID_TOKEN)
            return self._keys[kid]

    def _may_read_keys(self) -> bool:
        read_at = self._keys_read_at
        return read_at is None or time.monotonic() - read_at >= JWKS_REFETCH_SECONDS

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims once every check passed; AuthenticationError otherwise."""
        discovery = await self.discovery()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError(BAD_ID_TOKEN) from exc
        algorithm = header.get("alg")
        if algorithm not in (discovery.algorithms or {"RS256"}):
            raise AuthenticationError(BAD_ID_TOKEN)
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[str(algorithm)],
                audience=self.provider.client_id,
                issuer=self.provider.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(BAD_ID_TOKEN) from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.provider.client_id:
            raise AuthenticationError(BAD_ID_TOKEN)
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise AuthenticationError(BAD_ID_TOKEN)
        return claims


class Providers:
    """The configured providers' clients, one per process (`app.state.oidc`)."""

    def __init__(self, providers: list[OidcProvider], api_url: str) -> None:
        """`api_url`: the API's public URL (OIDC_REDIRECT_BASE_URL and the API prefix)."""
        self._clients = {
            provider.name: ProviderClient(provider, f"{api_url}/auth/oidc/{provider.name}/callback")
            for provider in providers
        }

    def get(self, name: str) -> ProviderClient | None:
        return self._clients.get(name)
