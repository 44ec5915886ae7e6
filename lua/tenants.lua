-- route() on a trusted listener without subhost_auth: map tenant host names to deployments.
-- The deployment is booted from the subhoster's first rpc_root_allow. Unknown hosts get 404.
local tenants = {
    ["hello.localhost"] = "hello",
    ["counter.localhost"] = "instance-id",
}

function route(req)
    local host = (req.host or ""):lower():gsub(":%d+$", "")
    local deployment = tenants[host]
    if not deployment then
        return subgate.respond(404, "unknown tenant " .. host .. "\n")
    end
    return { deployment = deployment }
end
