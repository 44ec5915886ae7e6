-- identify(): the request identifier of the gateway model (protocol.md §6). Requests with one
-- identifier go back to the isolate they were last sent to while it is under its isolate_limit.
--
-- As in the Durable Object Gateway's example: the bearer token when there is one, else the
-- client's address. Hash the token so that it never sits in subgate's memory tables as is.
function identify(req)
    local auth = req.headers["authorization"]
    if auth then
        local token = subgate.re.match(auth, [[^Bearer\s+(\S+)$]], "i")
        if token then
            return "token:" .. subgate.hmac_sha256_hex("identify", token[1])
        end
    end
    return "addr:" .. req.remote_addr
end
