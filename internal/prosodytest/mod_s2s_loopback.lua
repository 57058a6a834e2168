-- mod_s2s_loopback: test-only global module of psakit's internal/prosodytest.
--
-- Prosody 0.12.3 has no per-domain s2s address override. This module wraps
-- net.resolvers.service.new (called by mod_s2s for every new outgoing s2s
-- connection, in 0.12 and 13 alike; 13 also asks it for "xmpps-server",
-- which gets no target here) so that the domains of s2s_loopback_targets
-- resolve to 127.0.0.1:PORT without any DNS query. With
-- s2s_loopback_only = true every other domain fails at once instead of
-- being looked up in DNS.
--
-- It also logs a fixed line when the server has started, so that the test
-- harness can wait for readiness without polling.
module:set_global();

local service = require "net.resolvers.service";
local basic = require "net.resolvers.basic";

local targets = module:get_option("s2s_loopback_targets", {});
local loopback_only = module:get_option_boolean("s2s_loopback_only", true);
local original_new = service.new;

local no_targets = { next = function (_, cb) cb(nil); end };

service.new = function (hostname, srv, conn_type, extra)
	local port = targets[hostname];
	if port then
		if srv == "xmpp-server" then
			return basic.new("127.0.0.1", port, conn_type, extra);
		end
		return setmetatable({}, { __index = no_targets });
	end
	if loopback_only then
		module:log("debug", "No loopback target for %s (%s): failing without DNS", tostring(hostname), tostring(srv));
		return setmetatable({}, { __index = no_targets });
	end
	return original_new(hostname, srv, conn_type, extra);
end

function module.unload()
	service.new = original_new;
end

module:hook_global("server-started", function ()
	module:log("info", "prosodytest: server started");
end, -1000);
