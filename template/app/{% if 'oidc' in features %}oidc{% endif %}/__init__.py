"""Sign-in with OpenID Connect providers (the authorization code flow with PKCE, state, nonce).

`config`: the providers of OIDC_PROVIDERS. `client`: one provider's discovery document, keys
(JWKS, refetched when a token names a key not seen yet) and the protocol's requests. `state`:
what the callback must find again, in a signed cookie (any worker process can read it).
"""
