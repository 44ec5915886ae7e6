-- route(): requests under /api/ go to the `api` upstream block (say, an existing backend),
-- everything else to the location's isolates. Needs in the config:
--   upstream api { server 127.0.0.1:9000; keepalive 32; }
function route(req)
    if req.path:sub(1, 5) == "/api/" then
        return {
            upstream = "api",
            path = req.path:sub(5),  -- /api/users -> /users
            set_headers = { ["x-routed-by"] = "subgate" },
        }
    end
    return nil
end
