-- wrk script for `backforge bench`: POST /api/v1/items with a JSON body.
-- The bearer token (and X-Organization-ID, for multi-tenant projects) come from wrk's -H options.
wrk.method = "POST"
wrk.body = '{"name": "bench item", "description": "created under load by backforge bench"}'
wrk.headers["Content-Type"] = "application/json"
