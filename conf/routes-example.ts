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
#    websocket: true
##     WebSocket handshakes (Upgrade: websocket) on this route are authenticated like any
##     request, then proxied to \`target\` as ws:// or wss://. Default true; false refuses them
##     with 403.
#    filters:
#      default_allow: false
#      allow:
#        - field: header
#          name: "^X-API-Key$"
#          pattern: "^[0-9a-f]{32}$"
#      deny:
#        - field: body_json
#          key: "status"
#          pattern: "^archived$"
#      max_body_bytes: 1048576
##     Per-route ACL, checked before forwarding; a refused request gets 403 FILTER_DENIED and
##     never reaches the target. A request matching any deny condition is refused; when allow
##     is not empty every allow condition must match; when it is empty default_allow decides
##     (default false: everything refused). Conditions: field method, path (the whole decoded
##     path), header or query (name: regex over names, pattern: regex over values), body_raw,
##     body_json (key: a top-level key). Body conditions read at most max_body_bytes (default
##     1 MiB; larger gets 413). Regexes are JavaScript syntax with an optional leading (?i);
##     backreferences and lookarounds are refused. README "Filters" has the exact rules.
##
## Upstream TLS and forward proxy. These keys need an https target, certificate files or a
## proxy that the route above cannot assume, so they are shown here only (README: "Upstream
## TLS and forward proxy"). File paths are relative to this file's directory.
##   ca: "pki/internal-ca.pem"
##     https targets only: PEM CA certificate(s) trusted for this upstream instead of the
##     system's roots. Unset: the system's roots.
##   tls_verify: true
##     https targets only: false accepts any certificate from the upstream (warned at every
##     load). Default true.
##   cert: { file: "pki/gateway.p12", password: "..." }  or  { file: "gw.pem", key: "gw.key" }
##     https targets only: client certificate presented to the upstream (PKCS#12 with its
##     password, or PEM with an unencrypted key). Checked at load.
##   proxy: true
##   proxy_config: "http://user:password@proxy.lan:3128"
##     Send this route's requests through that HTTP proxy: a CONNECT tunnel for https targets,
##     absolute-form requests for http ones; the credentials go to the proxy only.
##     Default proxy: false.
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
#    need_csrf: true
##     Session-cookie mode only (config.json session_cookie and csrf_token): a request
##     authenticated by the session cookie whose method is not GET, HEAD or OPTIONS must carry
##     a CSRF token of its session (X-CSRF-Token header, or the csrf_token field of a form or
##     JSON body) and come from the gateway's own origin or one of cors_origins, else 403.
##     Requests with a bearer token are not checked. Default true; false exempts this route.
#    cache: true
##     false: every answer of this route carries Cache-Control: no-store, Pragma: no-cache and
##     Expires: 0 (replacing the backend's own), so no browser or shared cache keeps it;
##     Content-Type and the other headers stay as the backend sent them. Default true: the
##     backend's headers pass unchanged.
##
## Not supported yet: none. Every route key of the original ProxyAuth is built.
`;
