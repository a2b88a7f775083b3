"""The steps that prove a rendered variant: result types (`results`, a leaf), tool runners
(`tools`), the static tier (`static`), the OpenAPI build (`openapi`) and the full tier (`full`)."""
