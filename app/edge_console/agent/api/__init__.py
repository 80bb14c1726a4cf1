"""The agent's HTTP/WebSocket API: the server and its routes, who may call what, and the connection defences.

    server.py           the aiohttp application under /v1: info, frames, stream, telemetry, health, models
    access.py           the role every route (method and path) needs, ids from URLs checked once, one middleware
    json_answers.py     the one way routes refuse ({"error", "detail"}) and read a bounded JSON object body
    connections.py      connection caps, classes (paired first), deadlines for heads and bodies
    tls_gate.py         TLS handshakes counted and timed before they cost memory
    socket_registry.py  every long-lived socket, counted per console and closed on revocation
    control_messages.py the small JSON messages clients send on WebSockets, parsed with bounds
    pairing_routes.py   the HTTP half of pairing (the exchange, pairing management)
    update_routes.py    the HTTP half of updates (uploads, install, versions, rollback, events, audit)
    log_limits.py       repeated log lines rate-limited
"""
