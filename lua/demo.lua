-- The embedded demo (conf/subgate.conf, port 8000): browse to http://127.0.0.1:8000/<deployment>/
-- with no token. route() takes the deployment from the first path segment and strips it; the
-- other hooks show what scripts can do.

-- Shared by every worker thread: counts requests per deployment.
local function count(deployment)
    return subgate.shared.incr("requests:" .. deployment, 1, 0)
end

function access(req)
    if req.path == "/" then
        return subgate.respond(200, "subgate demo: try /hello/, /instance-id/, /multi-module/, /chat/ or /counter/\n")
    end
    if req.method ~= "GET" and req.method ~= "HEAD" and req.method ~= "POST" then
        return subgate.respond(405, "GET, HEAD or POST\n", { allow = "GET, HEAD, POST" })
    end
end

function route(req)
    local deployment, rest = req.path:match("^/([%w%-_]+)(/?.*)$")
    if not deployment then
        return subgate.respond(404, "no deployment in the path\n")
    end
    if rest == "" then
        return subgate.respond(308, "", { location = "/" .. deployment .. "/" })
    end
    local seen = count(deployment)
    return {
        deployment = deployment,
        path = rest,
        set_headers = { ["x-demo-requests"] = tostring(seen) },
    }
end

-- The request identifier (protocol.md §6): ?name= when given (the chat and counter examples
-- use it as the member's name), else the client's address. Requests with one identifier go
-- back to the isolate they were last sent to while it has room (isolate_limit).
function identify(req)
    local name = req.query.name
    if name and name ~= "" then
        return name
    end
    return req.remote_addr
end
