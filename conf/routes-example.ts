// The commented routes.yml that first start writes. conf/routes.example.yml must stay identical
// to this text (test/conf-routes-example.test.ts checks it): edit both together.

/** routes.yml as first start writes it: no active route, every key explained in comments. */
export const ROUTES_EXAMPLE_YML = `## ProxyAuth routes.yml: which URL prefixes ProxyAuth serves, where it forwards them, and who
## may use them.
##
## No route is active: "routes: []" below forwards nothing. The commented route under it shows
## every key. To use it, replace "routes: []" with "routes:" and remove the first "#" of each
## line that starts with "# " (lines starting with "##" are explanations and stay comments).
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
##     prefix, then the query string, are appended to it. It may carry a path and a query.
#    secure: true
##     Require a valid token (Authorization: Bearer, or the session_token cookie). Default true;
##     false serves the route to anyone.
#    username: ["admin"]
##     Users allowed on this route (names from config.json). Unset: any authenticated user.
#    allow_methods: ["GET", "POST"]
##     HTTP methods accepted (case-insensitive); others get 405 with an Allow header.
##     Unset: every method.
#    secure_path: false
##     Forward to exactly \`target\` whatever the rest of the path (the query is kept).
##     Default false.
#    preserve_prefix: false
##     Append the whole request path, prefix included, to \`target\`. Default false.
#    need_csrf: true
##     Require a CSRF token on POST/PUT/PATCH/DELETE. Enforced only when config.json has
##     session_cookie and csrf_token on. Default true.
#    cache: false
##     Let clients and caches keep this route's responses. Default false.
#    backends:
#      - "http://127.0.0.1:8001/api"
#      - { url: "http://127.0.0.1:8002/api", weight: 3 }
#      - { url: "http://127.0.0.1:8003/api", weight: -1 }
##     Upstreams sharing this route's traffic, as a URL or {url, weight}. weight (0 to 1000,
##     default 1) sets each one's share: 3 gets three times the requests of 1. weight -1 takes
##     no traffic until every other backend fails (failover only).
#    proxy: false
#    proxy_config: "http://127.0.0.1:8888"
##     proxy: send the upstream request through the HTTP proxy in proxy_config (a URL, a
##     host:port, or {host: "host:port"}). Default false; proxy_config is required when true.
#    cert: { file: "certs/client.p12", password: "changeit" }
##     Client certificate presented to an https target: {file, password} for PKCS#12, or
##     {file: "client.pem", key: "client-key.pem"} for PEM. Relative paths are relative to the
##     directory of this file. Default: none.
#    filters:
#      default_allow: false
#      allow:
#        - field: method
#          pattern: "^(?:GET|POST)$"
#        - field: path
#          pattern: "^/api(?:/.*)?$"
#        - field: header
#          name: "^X-API-Key$"
#          pattern: "^[0-9a-f]{32}$"
#        - field: query
#          name: "^v$"
#          pattern: "^\\\\d+(?:\\\\.\\\\d+){0,2}$"
#        - field: body_json
#          key: status
#          pattern: "(?i)^active$"
##     Request filters, checked before forwarding; a request failing them gets 403.
##     default_allow: allow requests by default (true), or refuse those that do not match
##     the allow conditions (false, the default). allow: conditions that must ALL match:
##       field method | path | body_raw: \`pattern\` is tested against the method, the
##         normalised path, or the raw body.
##       field header | query: \`name\` picks the header (case-insensitively) or query
##         parameter names, \`pattern\` is tested against their values.
##       field body_json: \`key\` names a top-level key of a JSON body, \`pattern\` is tested
##         against its value.
##     Patterns are regular expressions (JavaScript syntax, Unicode mode); a leading "(?i)",
##     "(?s)" or "(?m)" is accepted as in Rust. A pattern that does not compile stops the
##     start with an error: a filter is never silently skipped.
`;
