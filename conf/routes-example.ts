// The commented routes.yml that first start writes. conf/routes.example.yml must stay identical
// to this text (test/conf-routes-example.test.ts checks it): edit both together.

/**
 * routes.yml as first start writes it: no active route, every key that works explained in
 * comments, and the keys that are not supported yet listed as such.
 */
export const ROUTES_EXAMPLE_YML = `## ProxyAuth routes.yml: which URL prefixes ProxyAuth serves, where it forwards them, and who
## may use them.
##
## No route is active: "routes: []" below forwards nothing. The commented route under it shows
## every key that works today. To use it, replace "routes: []" with "routes:" and remove the
## first "#" of each line that starts with "# " (lines starting with "##" are explanations and
## stay comments).
##
## Matching: the request path is decoded and normalised ("//", "." and ".." resolved), then the
## longest matching prefix wins, compared segment by segment ("/api" matches "/api" and
## "/api/x", never "/apix"). A path no route matches gets 404.

routes: []
#  - prefix: "/api"
##     Required. Path prefix served by this route: starts with "/"; a trailing "/" is ignored.
##     Two routes may not have the same prefix.
#    target: "http://127.0.0.1:8000/api"
##     Required. http(s) URL the request is forwarded to: the part of the path after the
##     prefix, then the query string, are appended to it. It may carry a path and a query, but
##     no user:password@ and no #fragment.
#    secure: true
##     Require a valid token (Authorization: Bearer). Default true; false serves the route to
##     anyone.
#    username: ["admin"]
##     Users allowed on this route (names from config.json); other users get 403. Unset: any
##     authenticated user.
#    allow_methods: ["GET", "POST"]
##     HTTP methods accepted (case-insensitive); others get 405 with an Allow header.
##     Unset: every method.
#    secure_path: false
##     Forward to exactly \`target\` whatever the rest of the path (the query is kept).
##     Default false.
#    preserve_prefix: false
##     Append the whole request path, prefix included, to \`target\`. Default false.
#    ratelimit: { requests_per_second: 100, burst: 20, block_delay: 0 }
##     This route's own rate limit instead of config.json's ratelimit_proxy, per user when the
##     request carries a valid token, else per client address; requests_per_second 0 turns
##     limiting off for this route. Unset: ratelimit_proxy applies.
#    backends: ["http://127.0.0.1:8001/api", { url: "http://127.0.0.1:8002/api", weight: 2 }]
##     More URLs serving what \`target\` serves, each with its own path and query. Requests are
##     spread by weight (smooth weighted round robin: weights 1 and 2 give exactly 1/3 and 2/3).
##     \`target\` takes part with weight 1 unless its URL is listed here (that weight then wins);
##     weight 0 leaves a backend out, -1 makes it a backup, used only while every weighted one
##     is down. A request moves to another backend only when it cannot have reached the first
##     (connection refused or timed out; a reset of a GET, HEAD, OPTIONS, PUT or DELETE without
##     a body); any HTTP status is the answer. A backend that fails 3 times in a row is skipped
##     for 1 s, twice as long each time it fails again (up to 30 s). All down: 503 with
##     Retry-After. Default: none, every request goes to \`target\`.
#    health_check: { path: "/healthz", interval: 5000, timeout: 2000, expected_status: 200 }
##     Active checks of \`target\` and the backends, by each gateway process for itself: GET
##     \`path\` on each backend's host every \`interval\` ms; no answer within \`timeout\` ms, a failed
##     connection or another status (one, or a list) takes the backend out until a check
##     passes. Unset: no checks (failures met by requests still count).
##
## Not supported yet. The original ProxyAuth's other route keys are accepted so that its files
## load, but this gateway does not act on them:
##   filters, cert, proxy: true
##     Refused: a routes.yml that uses them does not load, because ignoring them would let
##     through requests the filters are meant to stop, reach the target without the client
##     certificate, or go around the proxy.
##   proxy_config, cache: true, need_csrf: false
##     Accepted with a warning: they have no effect.
`;
