-- mod_psa: XEP-0310 Presence State Annotations for Prosody 0.12 and 13
--
-- Part of psakit (https://github.com/psakit/psakit), MIT licensed.
--
-- Load it on VirtualHosts (modules_enabled = { "psa" }) and on MUC
-- components. See README.md next to this file for what it does, every option
-- and its limits.
--
-- Overview
--   * Per client session, annotations are enabled by XEP-0115 caps: the
--     session's broadcast presence carries <c hash='sha-1'/>, the server asks
--     the client for disco#info of NODE#VER, verifies the hash and enables
--     annotations iff the verified features include urn:xmpp:psa. One query
--     per ver, shared by every session that announces it; transient
--     failures are retried.
--   * Annotations that others put in are stripped on the way in: all of them
--     from presence of local clients and presence into rooms, all but the
--     sending server's own over s2s (see the Trust section).
--   * A stanzas/out filter on every c2s session takes annotations out for
--     sessions that are not enabled (an annotated available presence is a
--     re-send and dropped, an unavailable goes on plain), and remembers, per
--     session, the last available presence received over s2s from every
--     remote full JID.
--   * When an s2s session to a domain is destroyed, or a keepalive ping over
--     a live one gets no answer, the host pings the domain (which dials a new
--     s2s connection; for the keepalive, its own timeout is the failure).
--     Only when that fails is the domain in outage: the remembered presences
--     from it are re-sent annotated <server-unavailable/>. Re-checks with
--     backoff (20 s at most); an s2s session established with the domain
--     ends the outage (outgoing) or triggers a re-check (incoming). On
--     restore the same presences with an empty annotation, then presence
--     probes, then unavailable for the resources they did not confirm.
--   * Re-sends (and a restore's probes, and a MUC's announcements) leave a
--     slice per turn of the event loop, so that a large roster does not
--     pile up in one connection's write buffer; a queued re-send never
--     overtakes a newer presence.
--   * State lives in module:shared(), so module:reload keeps it.
--   * XEP-0198 hibernation of a session: its presence annotated
--     <connection-paused/> to everyone who has it (through the block list),
--     empty annotation on resume; both leave in slices over turns of the
--     event loop, the resume's once <resumed/> is written, and a queued
--     one never overtakes a newer presence from the user. Probe answers
--     for a paused session are annotated too.
--   * On a MUC component: occupants whose server is unreachable from the MUC
--     host are annotated to the other occupants, and nothing is routed to that
--     server meanwhile (a bounce would kick them).

local st = require "util.stanza";
local jid_util = require "util.jid";
local filters = require "util.filters";
local new_cache = require "util.cache".new;
local calculate_hash = require "util.caps".calculate_hash;
local datetime = require "util.datetime";
local time_now = require "util.time".now;
local new_id = require "util.id".short;
local is_module_loaded = require "core.modulemanager".is_loaded;

local jid_bare, jid_host, jid_resource = jid_util.bare, jid_util.host, jid_util.resource;
local pairs, ipairs, next, pcall, tostring = pairs, ipairs, next, pcall, tostring;
local math_min, math_max = math.min, math.max;

local hosts = prosody.hosts;
local bare_sessions = prosody.bare_sessions;

local xmlns_psa = "urn:xmpp:psa";
local xmlns_caps = "http://jabber.org/protocol/caps";
local xmlns_disco_info = "http://jabber.org/protocol/disco#info";
local xmlns_delay = "urn:xmpp:delay";
local xmlns_ping = "urn:xmpp:ping";
local xmlns_muc = "http://jabber.org/protocol/muc";

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------

local function number_option(name, default, min, max)
	local value = module:get_option_number(name, default) or default;
	if min and value < min then value = min; end
	if max and value > max then value = max; end
	return value;
end

-- Seconds between reachability checks of a domain in outage; doubles after
-- every failed check up to psa_recheck_max_interval. The maximum bounds how
-- late a heal that no s2s session reveals is noticed (one interval plus a
-- ping), whatever the outage's length: 20 s keeps it within 30 s. An s2s
-- session established with the domain is noticed at once.
local recheck_interval = number_option("psa_recheck_interval", 5, 0.01);
local recheck_max_interval = math_max(recheck_interval, number_option("psa_recheck_max_interval", 20, 0.01));
-- Seconds to wait for the answer to a reachability ping.
local ping_timeout = number_option("psa_ping_timeout", 30, 0.1);
-- On a MUC component, stanzas for a domain in outage are held, not routed
-- (a bounce would kick its occupants): at most this many per domain, sent
-- when the domain is found reachable if they are younger than
-- psa_hold_time seconds, else dropped. A user of that domain joining a room
-- right after its server restarted gets the room's answer once the check
-- that the join itself prompts succeeds, instead of never.
local hold_max = number_option("psa_hold_max", 100, 0);
local hold_time = number_option("psa_hold_time", 30, 0);
-- Seconds between keepalive pings to the remote domains this host has an
-- outgoing s2s session with and annotations depend on; 0 turns them off. A
-- peer that is frozen, or a path that silently drops packets, keeps its TCP
-- connection open and is otherwise noticed only by Prosody's read timeout
-- (840 s).
local keepalive_interval = number_option("psa_keepalive_interval", 60, 0);
-- Seconds to wait for a client's disco#info answer.
local disco_timeout = number_option("psa_disco_timeout", 30, 0.1);
-- After a restore, probe the remote contacts whose presences were annotated.
local probe_after_restore = module:get_option_boolean("psa_probe_after_restore", true);
-- Bounds on memory.
local caps_cache_size = number_option("psa_caps_cache_size", 1000, 1);
local max_per_session = number_option("psa_max_presences_per_session", 1000, 1);
local max_total = number_option("psa_max_presences", 100000, 1);
local max_directed = number_option("psa_max_directed_per_session", 100, 0);
local max_muc_tracked = number_option("psa_muc_max_tracked_jids", 10000, 1);
-- Of those, at most this many from one domain not hosted on this server.
local max_muc_per_domain = math_min(max_muc_tracked, number_option("psa_muc_max_tracked_jids_per_domain", 1000, 1));
-- Human readable descriptions; "{domain}" is replaced by the domain, an
-- empty string leaves the description out.
local text_server = module:get_option_string("psa_server_unavailable_text", "The server {domain} is not reachable");
local text_paused = module:get_option_string("psa_connection_paused_text", "The connection of this session is paused");
local text_muc = module:get_option_string("psa_muc_unreachable_text", "The server of this occupant ({domain}) is not reachable");
local text_lang = module:get_option_string("psa_description_lang", "en");
-- Seconds a BOSH session may hold no request and make no new one before it
-- counts as paused; 0 turns BOSH pauses off.
local bosh_pause_after = number_option("psa_bosh_pause_after", 10, 0);
-- Re-sends to one session per turn of the event loop (outage, restore): a
-- session with thousands of contacts on a domain gets them in slices, so
-- that its connection is written out in between (Prosody 13 copies a
-- connection's whole write buffer every 32 writes made without a flush).
-- psa_resend_interval: seconds between two slices (0: the next turn).
local resend_batch = number_option("psa_resend_batch", 16, 1);
local resend_interval = number_option("psa_resend_interval", 0, 0);
-- Send <connection-paused/> annotations to remote contacts too (their server
-- filters them only if it runs mod_psa).
local pause_remote = module:get_option_boolean("psa_pause_remote", true);

local host = module.host;
local host_type = module:get_host_type();
local is_muc = host_type == "component" and module:get_option_string("component_module") == "muc";
local is_user_host = host_type == "local";

if not is_muc and not is_user_host then
	module:log("warn", "mod_psa does nothing on this host: load it on VirtualHosts and MUC components");
	return;
end

module:add_feature(xmlns_psa);

-- State that outlives module:reload: which sessions get annotations, what
-- they were sent, the domains in outage, pauses. Prosody keeps a module's
-- shared tables while it reloads it. Cache eviction handlers dispatch
-- through it, so that caches made before a reload call the new code.
local S = module:shared("state");
local function kept(name, make)
	local v = S[name];
	if v == nil then
		v = make();
		S[name] = v;
	end
	return v;
end
local function weak_table() return setmetatable({}, { __mode = "k" }); end
local function kept_cache(name, size, on_evict_name)
	local c = kept(name, function ()
		return new_cache(size, on_evict_name and function (k, v)
			local f = S[on_evict_name];
			if f then return f(k, v); end
		end or nil);
	end);
	c:resize(size);
	return c;
end

-- Statistics (Prosody's statistics API; a no-op unless `statistics` is
-- configured). Names as they appear: mod_psa/<name>, labelled with the host.
local measure_annotations = module:measure("annotations_sent", "counter"); -- annotated presences sent
local measure_outage = module:measure("outages", "rate"); -- domains that went into outage
local measure_restore = module:measure("restores", "rate"); -- outages that ended
local measure_checks = module:measure("checks_inflight", "amount"); -- reachability pings in flight
local measure_requests = module:measure("requests_inflight", "amount"); -- disco#info, keepalive and resource checks in flight
local measure_queued = module:measure("requests_queued", "amount"); -- the same, waiting for room
local measure_disco_retry = module:measure("disco_retries", "rate"); -- disco#info asked again after a transient failure
local measure_ping_undecided = module:measure("pings_undecided", "rate"); -- pings that failed locally and were sent again
local measure_unconfirmed = module:measure("unconfirmed_unavailable", "counter"); -- unavailables for resources gone during an outage

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

local function safely(what, f, ...)
	local ok, err = pcall(f, ...);
	if not ok then
		module:log("error", "Error in %s: %s", what, tostring(err));
	end
	return ok;
end

local function describe(text, domain)
	if text == nil or text == "" then return nil; end
	return (text:gsub("{domain}", function () return domain or ""; end));
end

-- annotate adds a state annotation from `by` to stanza (in place): condition
-- nil gives the empty annotation that clears an earlier one.
local function annotate(stanza, by, condition, text)
	local ann = st.stanza("state-annotation", { xmlns = xmlns_psa, from = by });
	if condition then
		ann:tag(condition):up();
		if text then
			ann:tag("description", { ["xml:lang"] = text_lang }):text(text):up();
		end
	end
	return stanza:add_child(ann);
end

local function strip_annotations(stanza)
	return stanza:maptags(function (tag)
		if tag.name == "state-annotation" and tag.attr.xmlns == xmlns_psa then
			return nil;
		end
		return tag;
	end);
end

---------------------------------------------------------------------------
-- Trust: annotations that clients, occupants and other servers put in
--
-- A client accepts an annotation only when its `from` is its own server's
-- domain or the domain of the presence's sender. That holds only if servers
-- strip what others put in: mod_psa strips every annotation from presence a
-- local client sends and from presence sent into a room, and keeps, over
-- s2s, only the annotations from the sending server's own domain.
---------------------------------------------------------------------------

-- Presences that mod_psa built itself: its own hooks leave them alone.
local own_stanzas = setmetatable({}, { __mode = "k" });

-- Annotated presences of mod_psa's that may be the recipient's first copy of
-- the presence (a paused session's answer to a probe): a session that did
-- not ask for annotations gets them plain rather than nothing.
local first_copies = setmetatable({}, { __mode = "k" });

-- keep_annotations_from strips every annotation of stanza (in place) except
-- the first one whose from is `by`; by nil strips them all.
local function keep_annotations_from(stanza, by)
	if not stanza:get_child("state-annotation", xmlns_psa) then return stanza; end
	local kept = false;
	return stanza:maptags(function (tag)
		if tag.name == "state-annotation" and tag.attr.xmlns == xmlns_psa then
			if by ~= nil and not kept and tag.attr.from == by then
				kept = true;
				return tag;
			end
			return nil;
		end
		return tag;
	end);
end

-- s2s_speaks_for tells whether the s2s session origin is authenticated for
-- domain (the router drops stanzas whose from is not, but say it here).
-- Bounces generated by our own s2s layer (origin.dummy) speak for nobody.
local function s2s_speaks_for(origin, domain)
	if not domain or origin.dummy then return false; end
	if origin.type == "s2sin" then
		local h = origin.hosts and origin.hosts[domain];
		return (h ~= nil and h.authed == true) or origin.from_host == domain;
	elseif origin.type == "s2sout" then
		return origin.to_host == domain;
	end
	return false;
end

-- Presence a local client sends (pre-presence/*: broadcast, directed,
-- to rooms): no annotation survives.
local function strip_from_client(event)
	local stanza = event.stanza;
	if not own_stanzas[stanza] then
		keep_annotations_from(stanza, nil);
	end
end

-- Presence that arrives over s2s: only the sending server speaks for its
-- own users' sessions (and a remote MUC service for its occupants).
local function filter_from_s2s(event)
	local origin, stanza = event.origin, event.stanza;
	if origin.type ~= "s2sin" and origin.type ~= "s2sout" then return; end
	local domain = jid_host(stanza.attr.from);
	keep_annotations_from(stanza, s2s_speaks_for(origin, domain) and domain or nil);
end

-- Presence from another host of this server reaches the user host directly,
-- without s2s and without this host's pre-presence events: from a component
-- (a MUC service), from a user of another VirtualHost, or from that
-- VirtualHost itself (a probe answer). The other host speaks for its own
-- domain only if it runs mod_psa, which strips what its clients and
-- occupants put in; a VirtualHost without it would let its users annotate
-- in this host's name.
local function filter_from_other_host(event)
	local origin, stanza = event.origin, event.stanza;
	local t = origin.type;
	if t ~= "component" and t ~= "c2s" and t ~= "local" then return; end
	local by = origin.host;
	if by == host then return; end -- our own clients: stripped in pre-presence
	local domain = jid_host(stanza.attr.from);
	local trusted = by ~= nil and domain == by and is_module_loaded(by, "psa");
	keep_annotations_from(stanza, trusted and domain or nil);
end

-- Presence sent into a room (on a MUC component): the occupant's, whoever
-- routed it; only the service itself annotates occupants.
local function strip_into_room(event)
	local stanza = event.stanza;
	if not own_stanzas[stanza] then
		keep_annotations_from(stanza, nil);
	end
end

-- send_as routes a presence that mod_psa built in a local session's name
-- the way the session's own presence goes (core_post_stanza with the
-- pre-events, like mod_presence's broadcast), so that mod_blocklist and any
-- privacy module decide whether it goes out. A proxy origin keeps the side
-- effects off the session: their errors ("You have blocked this JID") are
-- not queued to it, and mod_presence's directed-presence bookkeeping goes to
-- a throw-away table.
local function send_as(session, stanza)
	own_stanzas[stanza] = true;
	local origin = setmetatable({ send = function () return true; end, directed = {} }, { __index = session });
	prosody.core_post_stanza(origin, stanza, true);
end

-- deliver_to_session routes a presence that mod_psa built for a local
-- session through the host's presence/full event, like one from a remote
-- entity, so that the recipient's block list applies.
local function deliver_to_session(stanza)
	own_stanzas[stanza] = true;
	prosody.core_post_stanza(hosts[host], stanza);
end

-- resent_by_us tells whether every annotation of stanza is this host's:
-- then it is a re-send that mod_psa made of a presence the recipient has.
-- An annotation that another domain kept is not that: a remote server or
-- MUC service without mod_psa lets its users put one in their very first
-- presence.
local function resent_by_us(stanza)
	for tag in stanza:childtags("state-annotation", xmlns_psa) do
		if tag.attr.from ~= host then return false; end
	end
	return true;
end

-- for_session_without_psa is what a session that did not ask for
-- annotations gets instead of an annotated presence: the plain presence for
-- an unavailable or error (it must learn that the entity left), nothing for
-- an available one that mod_psa re-sends (the session has it), and the plain
-- presence for one annotated by another domain (it may be the first: dropped,
-- its sender would be invisible to the session).
local function for_session_without_psa(stanza, session)
	local t = stanza.attr.type;
	if t == nil and resent_by_us(stanza) and not first_copies[stanza] then
		module:log("debug", "Dropping annotated presence from %s to %s: annotations not enabled",
			stanza.attr.from or "?", session.full_jid or "?");
		return nil;
	end
	return keep_annotations_from(st.clone(stanza), nil);
end

-- Caps verification cache of this host: ver -> true when the verified
-- features include urn:xmpp:psa, false otherwise. Only verified answers
-- enter it.
local caps_cache = kept_cache("caps_cache", caps_cache_size);

-- verify_caps checks a disco#info <query/> against a sha-1 ver. It returns
-- verified, has_psa. Ill-formed answers (XEP-0115 §5.4: duplicate
-- identities, features or FORM_TYPEs, forms whose FORM_TYPE is missing or not
-- hidden) are not verified.
local function verify_caps(query, ver)
	if not query then return false, false; end
	local identities, features, forms = {}, {}, {};
	local has_psa = false;
	for tag in query:childtags() do
		if tag.name == "identity" then
			local key = (tag.attr.category or "").."\0"..(tag.attr.type or "").."\0"
				..(tag.attr["xml:lang"] or "").."\0"..(tag.attr.name or "");
			if identities[key] then return false, false; end
			identities[key] = true;
		elseif tag.name == "feature" then
			local var = tag.attr.var or "";
			if features[var] then return false, false; end
			features[var] = true;
			if var == xmlns_psa then has_psa = true; end
		elseif tag.name == "x" and tag.attr.xmlns == "jabber:x:data" then
			local form_type;
			for field in tag:childtags("field") do
				if field.attr.var == "FORM_TYPE" then
					if form_type or field.attr.type ~= "hidden" then return false, false; end
					form_type = field:get_child_text("value") or "";
				end
			end
			if not form_type or forms[form_type] then return false, false; end
			forms[form_type] = true;
		end
	end
	local computed = calculate_hash(query);
	if computed ~= ver then return false, false; end
	return true, has_psa;
end

---------------------------------------------------------------------------
-- Requests in flight
--
-- Prosody tracks at most 256 module:send_iq requests per module and host;
-- beyond that it rejects the oldest with resource-constraint. Bulk requests
-- (disco#info of caps, keepalive pings, resource checks after a restore) go
-- through a queue that keeps at most max_bulk_inflight of them in flight, so
-- that they never evict one another and reachability checks find room.
---------------------------------------------------------------------------

local max_bulk_inflight = 128;
local max_bulk_queued = 10000;
local bulk_inflight, bulk_queue, bulk_head, bulk_tail = 0, {}, 1, 0;
local pump_bulk; -- forward

local function send_bulk(iq, timeout, on_result, on_error)
	if bulk_inflight >= max_bulk_inflight then
		if bulk_tail - bulk_head + 1 >= max_bulk_queued then
			safely("iq error", on_error, { type = "wait", condition = "resource-constraint", text = "mod_psa request queue full" });
			return;
		end
		bulk_tail = bulk_tail + 1;
		bulk_queue[bulk_tail] = { iq, timeout, on_result, on_error };
		measure_queued(bulk_tail - bulk_head + 1);
		return;
	end
	bulk_inflight = bulk_inflight + 1;
	measure_requests(bulk_inflight);
	module:send_iq(iq, nil, timeout):next(function (event)
		bulk_inflight = bulk_inflight - 1;
		safely("iq result", on_result, event);
		pump_bulk();
	end, function (err)
		bulk_inflight = bulk_inflight - 1;
		safely("iq error", on_error, err);
		pump_bulk();
	end);
end

function pump_bulk()
	while bulk_inflight < max_bulk_inflight and bulk_head <= bulk_tail do
		local r = bulk_queue[bulk_head];
		bulk_queue[bulk_head] = nil;
		bulk_head = bulk_head + 1;
		send_bulk(r[1], r[2], r[3], r[4]);
	end
	measure_requests(bulk_inflight);
	measure_queued(bulk_tail - bulk_head + 1);
end

-- A failed request worth repeating: it never got an answer (evicted, timed
-- out, queue full) or the answer says to wait.
local function is_transient(err)
	if not (err and err.context and err.context.stanza) then return true; end
	return err.type == "wait";
end

---------------------------------------------------------------------------
-- Caps: one disco#info query per ver, whoever announces it
--
-- Every session (or MUC occupant) that announces a ver not in the cache
-- waits on the query for that ver. The query goes to one of them; the
-- answer is verified against the ver (XEP-0115 §5.4, as Prosody's mod_pep
-- does), so any announcer's answer is as good as another's, and a liar can
-- only fail its own verification: then the next one is asked. A transient
-- failure is retried (each announcer up to #caps_retry_delays times, after
-- the next delay), so a burst of logins does not leave sessions without
-- annotations for good.
---------------------------------------------------------------------------

local caps_retry_delays = { 1, 5, 15 };
local caps_queries = {}; -- ver -> { waiters = { waiter... }, asking = bool }
local ask_caps_next; -- forward

-- waiter = { to = full JID, node = caps node, tries = 0,
--            valid = function () -> bool, done = function (has_psa, why) }
function ask_caps_next(ver)
	local q = caps_queries[ver];
	if not q or q.asking then return; end
	local waiters = q.waiters;
	while waiters[1] and not waiters[1].valid() do
		table.remove(waiters, 1);
	end
	local w = waiters[1];
	if not w then
		caps_queries[ver] = nil;
		return;
	end
	q.asking = true;
	local iq = st.iq({ type = "get", from = host, to = w.to, id = "psa-disco-"..new_id() })
		:tag("query", { xmlns = xmlns_disco_info, node = w.node.."#"..ver }):up();
	send_bulk(iq, disco_timeout, function (event)
		q.asking = false;
		local verified, has_psa = verify_caps(event.stanza:get_child("query", xmlns_disco_info), ver);
		if verified then
			caps_cache:set(ver, has_psa);
			caps_queries[ver] = nil;
			for _, x in ipairs(waiters) do
				if x.valid() then x.done(has_psa, "disco#info verified"); end
			end
			return;
		end
		if waiters[1] == w then table.remove(waiters, 1); end
		module:log("info", "Caps of %s do not verify (ver %s): no annotations", w.to, ver);
		if w.valid() then w.done(false, "caps hash mismatch"); end
		ask_caps_next(ver);
	end, function (err)
		q.asking = false;
		if waiters[1] == w then table.remove(waiters, 1); end
		w.tries = (w.tries or 0) + 1;
		local cond = tostring(err and err.condition);
		if is_transient(err) and w.tries <= #caps_retry_delays and w.valid() then
			-- Ask again later, the others first if there are others.
			measure_disco_retry();
			waiters[#waiters + 1] = w;
			module:log("debug", "disco#info of %s failed (%s): asking again in %gs", w.to, cond, caps_retry_delays[w.tries]);
			module:add_timer(caps_retry_delays[w.tries], function ()
				if caps_queries[ver] == q then ask_caps_next(ver); end
			end);
			if waiters[1] ~= w then ask_caps_next(ver); end
			return;
		end
		if w.valid() then w.done(false, "disco#info failed: "..cond); end
		ask_caps_next(ver);
	end);
end

local function ask_caps(ver, waiter)
	local q = caps_queries[ver];
	if not q then
		q = { waiters = {}, asking = false };
		caps_queries[ver] = q;
	end
	q.waiters[#q.waiters + 1] = waiter;
	ask_caps_next(ver);
end

---------------------------------------------------------------------------
-- Link monitor: is a remote domain reachable from this host?
--
-- State per remote domain: no entry = up; "checking" = an s2s session was
-- lost and a ping is in flight; "down" = the ping failed, the domain is in
-- outage and annotations were sent.
---------------------------------------------------------------------------

local links = kept("links", function () return {}; end);
local stopping = false;
local hooks = {}; -- filled below: relevant(domain), on_outage(domain), on_restore(domain)

local check_domain; -- forward
local checks_inflight = 0;

-- classify_ping_error returns reachable (true, false, or nil when the ping
-- says nothing) and a detail.
local function classify_ping_error(err)
	local cond = err and err.condition;
	local answered = err and err.context and err.context.stanza;
	-- Prosody's own send_iq failures (the request evicted from its 256
	-- tracked requests, an id conflict, a tracking error) never reached the
	-- domain: undecided, ask again.
	if not answered and (cond == "resource-constraint" or cond == "conflict" or cond == "internal-server-error") then
		return nil, cond;
	end
	-- A locally generated bounce (connection refused, stream failure) or a
	-- timeout means unreachable; any other error was answered by the domain.
	if cond == "remote-server-not-found" or cond == "remote-server-timeout" then
		return false, cond;
	end
	if not answered then
		return false, cond or "timeout";
	end
	-- Prosody 13 acknowledges s2s stanzas (XEP-0198): what a dying session
	-- did not acknowledge bounces recipient-unavailable from our own host.
	-- The ping was lost with that session: undecided (nil).
	if cond == "recipient-unavailable" and err.context.origin == hosts[host] then
		return nil, cond;
	end
	return true, cond;
end

-- schedule_recheck re-checks domain after delay seconds, or, without a
-- delay, after the next interval of the backoff (which doubles up to
-- recheck_max_interval).
local function schedule_recheck(domain, link, delay, why)
	if link.timer then link.timer:stop(); end
	if not delay then
		delay = link.interval or recheck_interval;
		link.interval = math_min(delay * 2, recheck_max_interval);
	end
	link.timer_due = time_now() + delay;
	link.timer = module:add_timer(delay, function ()
		link.timer, link.timer_due = nil, nil;
		if links[domain] ~= link or stopping then return; end
		if not hooks.relevant(domain) then
			-- Nobody has anything from it any more: nothing to restore.
			links[domain] = nil;
			module:log("info", "Forgetting %s: nothing depends on it any more (in outage for %.0fs)",
				domain, time_now() - (link.since or time_now()));
			return;
		end
		check_domain(domain, why or "periodic re-check");
	end);
end

local function set_up(domain, link, why)
	if link.timer then link.timer:stop(); link.timer = nil; end
	links[domain] = nil;
	local held = link.held;
	link.held = nil;
	if held then
		local now, sent = time_now(), 0;
		for _, h in ipairs(held) do
			if now - h.at <= hold_time then
				module:send(h.stanza);
				sent = sent + 1;
			end
		end
		module:log("debug", "Sent %d of the %d stanzas held for %s", sent, #held, domain);
	end
	if link.state == "down" then
		module:log("info", "Link %s -> %s is up (%s) after %.3fs of outage", host, domain, why, time_now() - link.since);
		measure_restore();
		safely("restore", hooks.on_restore, domain);
	else
		module:log("info", "Link %s -> %s is up (%s): the lost s2s session was not an outage", host, domain, why);
	end
end

local function set_down(domain, link, why)
	if link.state ~= "down" then
		link.state = "down";
		link.since = time_now();
		link.interval = nil;
		module:log("info", "Link %s -> %s is down (%s): annotating", host, domain, why);
		measure_outage();
		safely("outage", hooks.on_outage, domain);
	else
		module:log("debug", "Link %s -> %s is still down (%s)", host, domain, why);
	end
	local again = link.again;
	link.again = nil;
	if again then
		-- Evidence that it is back came while the failed ping was out.
		check_domain(domain, again);
	else
		schedule_recheck(domain, link);
	end
end

function check_domain(domain, why)
	local link = links[domain];
	if not link then
		link = { state = "checking", gen = 0 };
		links[domain] = link;
	end
	link.gen = link.gen + 1;
	link.last_check = time_now();
	local gen = link.gen;
	module:log("debug", "Checking reachability of %s from %s (%s)", domain, host, why);
	local iq = st.iq({ type = "get", from = host, to = domain, id = "psa-ping-"..new_id() })
		:tag("ping", { xmlns = xmlns_ping }):up();
	local function done(reachable, detail)
		if links[domain] ~= link or link.gen ~= gen then return; end -- superseded
		link.inflight = nil;
		if reachable == nil then
			measure_ping_undecided();
			if detail == "recipient-unavailable" then
				-- Lost with its s2s session (Prosody 13): ask again on a new
				-- one, unless the session's destroyed event already did.
				module:log("debug", "Reachability ping to %s lost with its s2s session: asking again", domain);
				schedule_recheck(domain, link, 0, "ping lost with its s2s session");
			else
				-- Failed inside Prosody (evicted from its request tracking).
				module:log("debug", "Reachability ping to %s failed locally (%s): asking again", domain, tostring(detail));
				schedule_recheck(domain, link, 1, why);
			end
		elseif reachable then
			set_up(domain, link, "ping answered"..(detail and (": "..detail) or ""));
		else
			set_down(domain, link, detail or "unreachable");
		end
	end
	link.inflight = true;
	checks_inflight = checks_inflight + 1;
	measure_checks(checks_inflight);
	module:send_iq(iq, nil, ping_timeout):next(function ()
		checks_inflight = checks_inflight - 1;
		measure_checks(checks_inflight);
		done(true);
	end, function (err)
		checks_inflight = checks_inflight - 1;
		measure_checks(checks_inflight);
		done(classify_ping_error(err));
	end);
end

-- An s2s session with domain was lost.
local function link_lost(domain, direction)
	if stopping or not domain or hosts[domain] then return; end
	local link = links[domain];
	if link and link.state == "down" then return; end
	if not link and not hooks.relevant(domain) then
		module:log("debug", "s2s %s session with %s lost; nothing to annotate for it", direction, domain);
		return;
	end
	if link and direction ~= "outgoing" then return; end -- a check is already in flight
	-- New check, or an outgoing session died while a ping may have been
	-- written into it: ping again, on a new connection.
	check_domain(domain, direction.." s2s session lost");
end

-- Evidence that domain may be reachable again. certain: an outgoing s2s
-- session to it was established, so it is. Otherwise (an incoming session,
-- a presence from it: it reaches us, which says nothing about our way to
-- it) ping it now, or as soon as the ping in flight fails, or, if one was
-- sent less than a second ago, a second after it: the evidence is never
-- dropped, however far away the next scheduled re-check is.
local function link_maybe_back(domain, why, certain)
	local link = links[domain];
	if not link or link.state ~= "down" then return; end
	if certain then
		set_up(domain, link, why);
		return;
	end
	if link.inflight then
		link.again = why;
		return;
	end
	local wait = math_min(recheck_interval, 1) - (time_now() - (link.last_check or 0));
	if wait <= 0 then
		check_domain(domain, why);
	elseif not (link.timer and link.timer_due and link.timer_due <= time_now() + wait) then
		schedule_recheck(domain, link, wait, why);
	end
end

module:hook("s2sout-destroyed", function (event)
	local session = event.session;
	if session.from_host == host then
		safely("s2sout-destroyed", link_lost, session.to_host, "outgoing");
	end
end);

-- A failed connection attempt never became an authenticated s2sout session:
-- Prosody (0.12 and 13) fires only the global s2s-destroyed for it. One that
-- was not ours (a ping's failure is reported by the ping) means the domain
-- may be unreachable, unless a check already runs.
module:hook_global("s2s-destroyed", function (event)
	local session = event.session;
	if session.type == "s2sout_unauthed" and session.from_host == host then
		safely("s2s-destroyed", link_lost, session.to_host, "failed outgoing");
	end
end);

module:hook("s2sin-destroyed", function (event)
	local session = event.session;
	if session.to_host == host then
		safely("s2sin-destroyed", link_lost, session.from_host, "incoming");
	end
end);

-- mod_s2s (a global module) fires these on the global bus, and again on the
-- host's; the global ones are the ones every version fires.
module:hook_global("s2sout-established", function (event)
	local session = event.session;
	if session.from_host == host then
		safely("s2sout-established", link_maybe_back, session.to_host, "outgoing s2s session established", true);
	end
end);

module:hook_global("s2sin-established", function (event)
	local session = event.session;
	if session.to_host == host then
		safely("s2sin-established", link_maybe_back, session.from_host, "incoming s2s session established", false);
	end
end);

-- mod_dialback and mod_saslauth (host modules) fire this on the host's bus
-- when a stream is authenticated for a domain, which comes before it counts
-- as established.
module:hook("s2s-authenticated", function (event)
	local session, domain = event.session, event.host;
	if not domain then return; end
	if session.type == "s2sout" or session.direction == "outgoing" then
		if session.from_host == host then
			safely("s2s-authenticated", link_maybe_back, domain, "outgoing s2s stream authenticated", true);
		end
	elseif session.to_host == host then
		safely("s2s-authenticated", link_maybe_back, domain, "incoming s2s stream authenticated", false);
	end
end);

module:hook_global("server-stopping", function ()
	stopping = true;
end);

-- Keepalive: every keepalive_interval, ping each remote domain that has an
-- outgoing s2s session from this host and that annotations depend on. No
-- answer within ping_timeout on a session that looks established means the
-- peer is frozen or the path drops packets: the domain is in outage at once
-- (a second ping over a new connection would wait as long again), and the
-- silent session is closed so that the re-checks dial a new one.
local function keepalive_failed(domain, detail)
	if stopping or links[domain] or not hooks.relevant(domain) then return; end
	local link = { state = "checking", gen = 0 };
	links[domain] = link;
	set_down(domain, link, "no answer to a keepalive ping ("..(detail or "timeout")..")");
	local s2sout = hosts[host] and hosts[host].s2sout;
	local session = s2sout and s2sout[domain];
	if session and session.close then
		session:close({ condition = "connection-timeout", text = "No answer to a keepalive ping" });
	end
end

local function keepalive()
	if stopping then return; end
	local s2sout = hosts[host] and hosts[host].s2sout;
	for domain in pairs(s2sout or {}) do
		if not links[domain] and not hosts[domain] and hooks.relevant(domain) then
			local iq = st.iq({ type = "get", from = host, to = domain, id = "psa-keepalive-"..new_id() })
				:tag("ping", { xmlns = xmlns_ping }):up();
			send_bulk(iq, ping_timeout, function () end, function (err)
				local reachable, detail = classify_ping_error(err);
				if reachable == false then -- nil: lost with its session, whose end checks, or evicted
					safely("keepalive", keepalive_failed, domain, detail);
				end
			end);
		end
	end
	return keepalive_interval;
end

if keepalive_interval > 0 then
	module:add_timer(keepalive_interval, keepalive);
end

---------------------------------------------------------------------------
-- Caps: which client sessions get annotations
---------------------------------------------------------------------------

-- Per c2s session state, keyed by the session object (weak):
--   status: "pending" (disco in flight), "on", "off"; node, ver, gen
local psa_state = kept("psa_state", weak_table);
-- After an XEP-0198 resumption the filters of the session are called with the
-- temporary session object: map it to the resumed one.
local canonical = kept("canonical", weak_table);

local function is_enabled(session)
	local state = psa_state[session];
	return state ~= nil and state.status == "on";
end

local on_session_enabled, forget_session_presences; -- forward

local function set_status(session, state, status, why)
	local old = state.status;
	state.status = status;
	module:log("debug", "Annotations for %s: %s (%s)", session.full_jid or "?", status, why);
	if status == "on" and old ~= "on" then
		safely("enable", on_session_enabled, session);
	elseif status == "off" then
		safely("forget", forget_session_presences, session);
	end
end

-- resolve_caps is called for every broadcast available presence of a session.
local function resolve_caps(session, c)
	local state = psa_state[session];
	if not state then
		state = { gen = 0 };
		psa_state[session] = state;
	end
	if not c then
		if not state.status then
			set_status(session, state, "off", "no caps in presence");
		end
		return;
	end
	local hash, node, ver = c.attr.hash, c.attr.node, c.attr.ver;
	if state.ver == ver and state.node == node and state.hash == hash and state.status then
		return; -- unchanged
	end
	state.node, state.ver, state.hash = node, ver, hash;
	state.gen = state.gen + 1;
	if hash ~= "sha-1" or not ver or not node then
		set_status(session, state, "off", "caps without a sha-1 hash");
		return;
	end
	local cached = caps_cache:get(ver);
	if cached ~= nil then
		set_status(session, state, cached and "on" or "off", "caps cache");
		return;
	end
	state.status = "pending";
	local gen = state.gen;
	ask_caps(ver, {
		to = session.full_jid, node = node;
		valid = function ()
			return psa_state[session] == state and state.gen == gen and not session.destroyed;
		end;
		done = function (has_psa, why)
			set_status(session, state, has_psa and "on" or "off", why);
		end;
	});
end

---------------------------------------------------------------------------
-- VirtualHost: memory of remote presences, the c2s filter, outages
---------------------------------------------------------------------------

local memory = kept("memory", weak_table); -- session -> cache(from full JID -> entry)
local counts = kept("counts", function () return { total = 0 }; end); -- total: presences remembered
local remembered_by_domain = kept("remembered_by_domain", function () return {}; end); -- domain -> count
local via_s2s = setmetatable({}, { __mode = "k" }); -- stanza -> true when it arrived over s2s

local function count_entry(entry, delta)
	counts.total = counts.total + delta;
	local n = (remembered_by_domain[entry.domain] or 0) + delta;
	remembered_by_domain[entry.domain] = n > 0 and n or nil;
end

local function session_memory(session, create)
	local mem = memory[session];
	if not mem and create then
		mem = new_cache(max_per_session, function (k, entry)
			local f = S.memory_evicted;
			if f then return f(k, entry); end
		end);
		memory[session] = mem;
	end
	return mem;
end

S.memory_evicted = function (_, entry)
	count_entry(entry, -1);
end

function forget_session_presences(session)
	local mem = memory[session];
	if not mem then return; end
	for _, entry in mem:items() do
		count_entry(entry, -1);
	end
	memory[session] = nil;
end

local function forget(session, from)
	local mem = memory[session];
	if not mem then return; end
	if jid_resource(from) then
		local entry = mem:get(from);
		if entry then
			count_entry(entry, -1);
			mem:set(from, nil);
		end
	else
		-- unavailable from a bare JID: every resource is gone
		local gone = {};
		for full, entry in mem:items() do
			if jid_bare(full) == from then gone[full] = entry; end
		end
		for full, entry in pairs(gone) do
			count_entry(entry, -1);
			mem:set(full, nil);
		end
	end
end

local function remember(session, stanza)
	local from = stanza.attr.from;
	if not from then return; end
	local t = stanza.attr.type;
	if t == "unavailable" or t == "error" then
		forget(session, from);
		return;
	elseif t ~= nil then
		return; -- subscription management and probes are not remembered
	end
	local state = psa_state[session];
	if not state or state.status == "off" then return; end -- never needs them
	local mem = session_memory(session, true);
	local old = mem:get(from);
	if not old and counts.total >= max_total then
		module:log("debug", "psa_max_presences (%d) reached, not remembering presence of %s", max_total, from);
		return;
	end
	-- The sender's server's own annotation (the only one filter_from_s2s
	-- keeps), when it says the presence is stale: a session that enables
	-- annotations after it got this presence plain gets it again then.
	local ann = stanza:get_child("state-annotation", xmlns_psa);
	if ann and (ann.attr.from == host or #ann.tags == 0) then ann = nil; end
	local copy = strip_annotations(st.clone(stanza));
	copy.attr.to = nil;
	local entry = {
		stanza = copy;
		domain = jid_host(from);
		received = datetime.datetime(); -- for the <delay/> of re-sends
		annotation = ann and st.clone(ann) or nil;
	};
	if old then count_entry(old, -1); end
	mem:set(from, entry);
	count_entry(entry, 1);
end

local function resend(session, entry, condition, text)
	local stanza = st.clone(entry.stanza);
	stanza.attr.to = session.full_jid;
	if not stanza:get_child("delay", xmlns_delay) then
		stanza:tag("delay", { xmlns = xmlns_delay, from = host, stamp = entry.received }):up();
	end
	annotate(stanza, host, condition, text);
	measure_annotations(1);
	deliver_to_session(stanza);
end

---------------------------------------------------------------------------
-- Re-sends, spread over turns of the event loop
--
-- An outage or a restore re-sends every presence remembered from a domain
-- to every session that has it: a session with N contacts there gets N
-- stanzas. Written in one event handler they all wait in the connection's
-- write buffer, which Prosody 13 copies whole every 32 writes: O(N²). So
-- re-sends wait in a queue per session, and each turn of the event loop
-- (a timer, which runs once the connections are written out) sends at most
-- resend_batch per session and resend_turn in all.
--
-- Order and memory: at most one re-send is pending per session and sender
-- (full JID), and it names the remembered entry, not a copy; the stanza is
-- built when it leaves. It does not leave if that entry is no longer what
-- the session remembers (a newer presence replaced it, an unavailable or a
-- restore's check forgot it): the session got something newer meanwhile,
-- which the filter annotated (see c2s_out_filter). A second request for the
-- same sender replaces the pending one, and one that undoes it (a restore
-- for an outage annotation that never left) cancels it. So the queue holds
-- at most one small table per remembered presence.
---------------------------------------------------------------------------

local resend_turn = math_max(resend_batch, 256);
local RQ = kept("resend_queue", function ()
	return {
		ring = {}, head = 1, tail = 0; -- sessions with pending re-sends, in turn
		by_session = {}; -- session -> { keys = { from... }, head, tail, jobs = { [from] = job } }
		pumping = false;
	};
end); -- job = { entry, condition, text, cancelled }

local function pending_resend(session, from)
	local q = RQ.by_session[session];
	local job = q and q.jobs[from];
	if job and not job.cancelled then return job; end
	return nil;
end

local pump_resends; -- forward

local function start_pump()
	if RQ.pumping then return; end
	RQ.pumping = true;
	module:add_timer(resend_interval, function ()
		return pump_resends();
	end);
end

-- queue_resend asks for entry to be re-sent to session, annotated with
-- condition (nil: the empty annotation).
local function queue_resend(session, entry, condition, text)
	local from = entry.stanza.attr.from;
	local q = RQ.by_session[session];
	if not q then
		q = { keys = {}, head = 1, tail = 0, jobs = {} };
		RQ.by_session[session] = q;
		RQ.tail = RQ.tail + 1;
		RQ.ring[RQ.tail] = session;
	end
	local job = q.jobs[from];
	if job then
		if not job.cancelled and job.entry == entry and (job.condition == nil) ~= (condition == nil) then
			-- It undoes the pending one, which never left.
			job.cancelled = true;
			return;
		end
		job.entry, job.condition, job.text, job.cancelled = entry, condition, text, nil;
		return;
	end
	q.jobs[from] = { entry = entry, condition = condition, text = text };
	q.tail = q.tail + 1;
	q.keys[q.tail] = from;
	start_pump();
end

-- take_over_resend is called for a presence from `from` that reaches
-- session by the ordinary way: it replaces the pending re-send, if any, and
-- returns it (its annotation is what the presence must carry).
local function take_over_resend(session, from)
	local job = pending_resend(session, from);
	if job then job.cancelled = true; end
	return job;
end

-- write_backlog returns how many bytes the session's connection holds that
-- it has not written to the socket yet (Prosody's epoll backend: a string,
-- 13's util.dbuffer, or 0.12's list of pieces), 0 when it cannot tell.
local function write_backlog(session)
	local conn = session.conn;
	if type(conn) ~= "table" then return 0; end
	local wb = conn.writebuffer;
	local t = type(wb);
	if t == "string" then return #wb; end
	if t ~= "table" then return 0; end
	if type(wb.length) == "function" then return wb:length(); end
	local n = 0;
	for i = 1, math_min(#wb, 64) do
		if type(wb[i]) == "string" then n = n + #wb[i]; end
	end
	return n;
end

-- A connection that still holds this much from the previous turns (its
-- client reads slowly) gets nothing more this turn: piled up, the backlog
-- would be copied again with every slice.
local resend_backlog = 16384;

function pump_resends()
	local budget = resend_turn;
	local turns = RQ.tail - RQ.head + 1; -- each session once per turn
	local sent_any = false;
	while budget > 0 and turns > 0 and RQ.head <= RQ.tail do
		turns = turns - 1;
		local session = RQ.ring[RQ.head];
		RQ.ring[RQ.head] = nil;
		RQ.head = RQ.head + 1;
		local q = RQ.by_session[session];
		if q then
			local sent = 0;
			local mem = memory[session];
			local live = not session.destroyed and is_enabled(session) and mem ~= nil;
			local ok, backlog = pcall(write_backlog, session);
			local ready = not ok or backlog <= resend_backlog;
			while live and ready and sent < resend_batch and q.head <= q.tail do
				local from = q.keys[q.head];
				q.keys[q.head] = nil;
				q.head = q.head + 1;
				local job = q.jobs[from];
				q.jobs[from] = nil;
				if job and not job.cancelled and mem:get(from) == job.entry then
					safely("re-send", resend, session, job.entry, job.condition, job.text);
					sent = sent + 1;
				end
			end
			if sent > 0 then sent_any = true; end
			budget = budget - math_max(sent, 1);
			if live and q.head <= q.tail then
				RQ.tail = RQ.tail + 1;
				RQ.ring[RQ.tail] = session;
			else
				RQ.by_session[session] = nil;
			end
		end
	end
	if RQ.head <= RQ.tail and not stopping then
		-- Every connection with re-sends waiting was still busy: look again
		-- a little later rather than at every turn.
		return sent_any and resend_interval or math_max(resend_interval, 0.05);
	end
	RQ.pumping = false;
	if RQ.head > RQ.tail then
		RQ.ring, RQ.head, RQ.tail = {}, 1, 0;
		module:log("debug", "Re-sends done: the queue is empty");
	end
	return nil;
end

local function c2s_out_filter(stanza, session)
	if stanza.name ~= "presence" or (stanza.attr.xmlns ~= nil and stanza.attr.xmlns ~= "jabber:client") then
		return stanza;
	end
	session = canonical[session] or session;
	if via_s2s[stanza] then
		-- Annotated or not: an unavailable must be forgotten.
		safely("remember", remember, session, stanza);
	end
	if stanza:get_child("state-annotation", xmlns_psa) then
		if is_enabled(session) then
			return stanza;
		end
		return for_session_without_psa(stanza, session);
	end
	-- A re-send of the sender's presence still waiting in the queue would
	-- overtake this newer presence: this one takes its place (and, once the
	-- link is back, its empty annotation: a probe answer after a restore).
	local pending = via_s2s[stanza] and stanza.attr.from and take_over_resend(session, stanza.attr.from);
	if pending and stanza.attr.type == nil and pending.condition == nil and is_enabled(session) then
		local link = links[jid_host(stanza.attr.from)];
		if not (link and link.state == "down") then
			local copy = st.clone(stanza);
			annotate(copy, host, nil);
			measure_annotations(1);
			return copy;
		end
	end
	if via_s2s[stanza] then
		-- A presence from a domain we hold in outage (a probe answer that was
		-- on its way when the link failed, or one coming over a link that
		-- works one way only) must not look like a fresh delivery to a client
		-- that follows annotations: until the re-check it triggered says the
		-- link is back, it goes out annotated like the re-sends. The stanza
		-- may be on its way to other sessions too: annotate a copy.
		if stanza.attr.type == nil and is_enabled(session) then
			local domain = jid_host(stanza.attr.from);
			local link = domain and links[domain];
			if link and link.state == "down" then
				local copy = st.clone(stanza);
				annotate(copy, host, "server-unavailable", describe(text_server, domain));
				measure_annotations(1);
				return copy;
			end
		end
	end
	return stanza;
end

local filter_priority = 500; -- before mod_smacks (-999) counts and queues stanzas

local function install_filter(session)
	filters.add_filter(session, "stanzas/out", c2s_out_filter, filter_priority);
end

local muc_on_jid_enabled; -- forward (MUC part)
local pauses_on_enable; -- forward (pauses)

-- on_session_enabled: the session asked for annotations only after its
-- first presence went out, so the answers to that presence's probes reached
-- it plain. What among them is stale is sent again, annotated: presences
-- from domains in outage, presences another server annotated (a remote
-- contact's paused session), and its local contacts' paused sessions.
function on_session_enabled(session)
	if not is_user_host then return; end
	if pauses_on_enable then pauses_on_enable(session); end
	local mem = memory[session];
	if not mem then return; end
	for _, entry in mem:items() do
		local link = links[entry.domain];
		if link and link.state == "down" then
			queue_resend(session, entry, "server-unavailable", describe(text_server, entry.domain));
		elseif entry.annotation then
			local stanza = st.clone(entry.stanza);
			stanza.attr.to = session.full_jid;
			stanza:add_child(st.clone(entry.annotation));
			deliver_to_session(stanza);
		end
	end
end

if is_user_host then
	-- Mark presences that arrive over s2s, so that the filter remembers them.
	local function mark_s2s(event)
		local origin, stanza = event.origin, event.stanza;
		-- origin.dummy: an error bounced by our own s2s layer because the
		-- link failed. It says nothing about the remote entity's presence,
		-- so it does not replace the remembered one.
		if (origin.type == "s2sin" or origin.type == "s2sout") and not origin.dummy then
			via_s2s[stanza] = true;
			local from_host = jid_host(stanza.attr.from);
			if from_host then
				safely("presence from domain", link_maybe_back, from_host, "presence received from it", false);
			end
		end
	end
	module:hook("presence/bare", mark_s2s, 1000);
	module:hook("presence/full", mark_s2s, 1000);

	-- Annotations that clients put in, and the ones other servers may not
	-- make, are stripped before anything else sees the presence.
	for _, name in ipairs({ "pre-presence/bare", "pre-presence/full", "pre-presence/host" }) do
		module:hook(name, strip_from_client, 2000);
	end
	for _, name in ipairs({ "presence/bare", "presence/full", "presence/host" }) do
		module:hook(name, filter_from_s2s, 2000);
		module:hook(name, filter_from_other_host, 2000);
	end

	-- Caps of the session's broadcast presence; directed presence bookkeeping.
	local directed_store = kept("directed_store", weak_table); -- session -> { [jid] = { stanza, muc } }

	-- Broadcast presences of local sessions: mod_presence posts the same
	-- stanza object again, with a `to`, to every resource and roster contact
	-- (and a session's stored presence to its new sibling resources). Those
	-- are not directed presences.
	local broadcasts = setmetatable({}, { __mode = "k" });

	module:hook("pre-presence/bare", function (event)
		local origin, stanza = event.origin, event.stanza;
		if origin.type ~= "c2s" or stanza.attr.to ~= nil or not event.to_self then return; end
		broadcasts[stanza] = true;
		local t = stanza.attr.type;
		if t == nil then
			safely("caps", resolve_caps, origin, stanza:get_child("c", xmlns_caps));
		elseif t == "unavailable" then
			safely("forget", forget_session_presences, origin);
		end
	end, 1000);

	-- Contacts a session appears offline to: its roster contacts (or its own
	-- account) that it sent a directed unavailable since its last available
	-- presence to them (a broadcast re-sends one to every contact). A pause
	-- must not show them its presence. Bounded by the roster.
	local hidden_from = setmetatable({}, { __mode = "k" }); -- session -> { [bare JID] = true }

	local function track_hidden(origin, to, t)
		local bare = jid_bare(to);
		local hidden = hidden_from[origin];
		if t == nil then
			if hidden then hidden[bare] = nil; end
			return;
		end
		local item = origin.roster and origin.roster[bare];
		local contact = item and (item.subscription == "both" or item.subscription == "from");
		if contact or bare == origin.username.."@"..origin.host then
			if not hidden then
				hidden = {};
				hidden_from[origin] = hidden;
			end
			hidden[bare] = true;
		end
	end

	local supersede_pause_state; -- forward (pause and resume)

	local function track_directed(event)
		local origin, stanza = event.origin, event.stanza;
		local to = stanza.attr.to;
		if origin.type ~= "c2s" or not to or event.to_self or own_stanzas[stanza] then return; end
		-- Whom it appears offline to: contacts and its own account, told by
		-- directed presences and by a broadcast's copies alike.
		-- A queued pause or resume annotation to it would overtake this.
		local t = stanza.attr.type;
		if t == nil or t == "unavailable" then
			track_hidden(origin, to, t);
			supersede_pause_state(origin, to);
		end
		if broadcasts[stanza] then return; end
		-- What mod_presence counts as directed: not to a contact that has a
		-- subscription to the user's presence, nor to the user's own resources.
		local to_bare = jid_bare(to);
		if to_bare == origin.username.."@"..origin.host then return; end
		local item = origin.roster and origin.roster[to_bare];
		if item and (item.subscription == "both" or item.subscription == "from") then return; end
		local store = directed_store[origin];
		if t == nil then
			if not store then
				store = { n = 0 };
				directed_store[origin] = store;
			end
			local old = store[to];
			if not old and store.n >= max_directed then return; end
			local copy = strip_annotations(st.clone(stanza));
			copy.attr.to = nil;
			if not old then store.n = store.n + 1; end
			store[to] = { stanza = copy, muc = (old and old.muc) or stanza:get_child("x", xmlns_muc) ~= nil };
		elseif (t == "unavailable" or t == "error") and store and store[to] then
			store[to] = nil;
			store.n = store.n - 1;
		end
	end
	module:hook("pre-presence/full", track_directed, 1000);
	module:hook("pre-presence/bare", track_directed, 1000);
	module:hook("pre-presence/host", track_directed, 1000);

	-- Filters: on every bound session, and again after an XEP-0198 resumption
	-- (which replaces the session's filter chain with the new connection's).
	module:hook("resource-bind", function (event)
		install_filter(event.session);
	end);

	for _, session in pairs(prosody.full_sessions) do
		if session.host == host then
			install_filter(session);
		end
	end

	-- Local session paused (XEP-0198 hibernation).
	local paused = kept("paused", weak_table); -- session -> list of { to, stanza }

	local function presence_recipients(session)
		local list = {};
		local base = session.presence;
		if base then
			local hidden = hidden_from[session] or {};
			for contact, item in pairs(session.roster or {}) do
				if contact and (item.subscription == "both" or item.subscription == "from") and not hidden[contact] then
					list[#list + 1] = { to = contact, stanza = base, kind = "contact" };
				end
			end
			local self_bare = session.username.."@"..session.host;
			local user = bare_sessions[self_bare];
			for _, res in pairs(user and user.sessions or {}) do
				if res ~= session and res.presence and not hidden[self_bare] then
					list[#list + 1] = { to = res.full_jid, stanza = base, kind = "self" };
				end
			end
		end
		-- Directed presences: only those remembered (and so known not to be
		-- room joins). Never to MUC rooms: they would re-broadcast it to every
		-- occupant. One that did not fit psa_max_directed_per_session may be a
		-- room: it gets nothing.
		local store = directed_store[session];
		for to in pairs(session.directed or {}) do
			local d = store and store[to];
			if d and not d.muc then
				list[#list + 1] = { to = to, stanza = d.stanza, kind = "directed" };
			end
		end
		return list;
	end

	-- The pause and resume annotations leave in slices over turns of the
	-- event loop, like the re-sends: written in one handler, a session
	-- with thousands of contacts kept Prosody from answering its
	-- resumption until all were built and routed. Per session and turn at
	-- most resend_batch go to other servers (they share one s2s
	-- connection per domain, whose write buffer is what Prosody 13
	-- copies) and resend_turn in all (a local recipient's connection gets
	-- one). A clearing after an XEP-0198 resumption waits until the
	-- session's connection has written <resumed/> (and the replay), at
	-- most pause_answer_wait seconds.
	--
	-- One job per session: the annotation still to send (condition, nil
	-- for the empty one) and the recipients still to get it, in a list
	-- from presence_recipients (so bounded by the roster, the user's
	-- resources and psa_max_directed_per_session). Order: a recipient's
	-- entry leaves only if what the recipient last got from the session is
	-- still that entry's presence (the session's broadcast presence for a
	-- contact or own resource, the remembered directed presence for the
	-- others, and no presence sent to it since the job was queued); a
	-- newer presence from the user supersedes it. A resume cancels the
	-- part of a queued pause that has not left (only those who got the
	-- pause get the clearing), and a pause the part of a queued clearing
	-- that has not left (those still show the session paused).
	local PQ = kept("pause_queue", function ()
		return {
			ring = {}, head = 1, tail = 0; -- sessions with a job, in turn
			queued = {}; -- session -> true while in the ring
			jobs = {}; -- session -> { condition, list, pos, by_to, after_answer, since }
			pumping = false;
		};
	end); -- list entry = { to, stanza, kind ("contact", "self" or "directed"), skip }
	local pause_answer_wait = 1;
	local function self_bare_of(session) return session.username.."@"..session.host; end

	-- still_recipient tells whether the recipient of list entry r still has
	-- the presence the entry would annotate, and only that.
	local function still_recipient(session, r)
		if r.skip then return false; end
		if r.kind == nil then return true; end -- listed by the code before a reload
		local hidden = hidden_from[session];
		if r.kind == "contact" then
			if session.presence ~= r.stanza then return false; end
			local item = session.roster and session.roster[r.to];
			return item ~= nil and (item.subscription == "both" or item.subscription == "from")
				and not (hidden and hidden[r.to]);
		elseif r.kind == "self" then
			if session.presence ~= r.stanza then return false; end
			local res = prosody.full_sessions[r.to];
			return res ~= nil and res ~= session and res.presence ~= nil
				and not (hidden and hidden[self_bare_of(session)]);
		end
		local store = directed_store[session];
		local d = store and store[r.to];
		return d ~= nil and d.stanza == r.stanza and not d.muc
			and session.directed ~= nil and session.directed[r.to] ~= nil;
	end

	-- send_pause_state sends r its annotation; it returns whether it sent
	-- one, and whether to another server.
	-- paused_copy is a copy of stanza, a presence of session's, to `to`,
	-- annotated condition (nil: the empty annotation that ends a pause).
	local function paused_copy(session, stanza, to, condition)
		local pres = strip_annotations(st.clone(stanza));
		pres.attr.from, pres.attr.to, pres.attr.type = session.full_jid, to, nil;
		annotate(pres, host, condition, condition and describe(text_paused, host));
		measure_annotations(1);
		return pres;
	end

	local function send_pause_state(session, r, condition)
		local is_local = hosts[jid_host(r.to)] ~= nil;
		if not (pause_remote or is_local) then return false; end
		local pres = paused_copy(session, r.stanza, r.to, condition);
		send_as(session, pres);
		return true, not is_local;
	end

	local pump_pauses; -- forward

	local function start_pause_pump()
		if PQ.pumping then return; end
		PQ.pumping = true;
		module:add_timer(resend_interval, function ()
			return pump_pauses();
		end);
	end

	-- queue_pause_state replaces the session's job with one that sends
	-- condition's annotation to the entries of list; an empty list just
	-- cancels the job.
	local function queue_pause_state(session, list, condition, after_answer)
		if #list == 0 then
			PQ.jobs[session] = nil;
			return;
		end
		local by_to = {};
		for _, r in ipairs(list) do by_to[r.to] = r; end
		PQ.jobs[session] = { condition = condition, list = list, pos = 1, by_to = by_to,
			after_answer = after_answer, since = time_now() };
		if not PQ.queued[session] then
			PQ.queued[session] = true;
			PQ.tail = PQ.tail + 1;
			PQ.ring[PQ.tail] = session;
		end
		start_pause_pump();
	end

	-- A presence the user sends to `to` (directed, or a broadcast's copy)
	-- supersedes the queued annotation for it.
	function supersede_pause_state(session, to)
		local job = PQ.jobs[session];
		if not job then return; end
		local r = job.by_to[to] or job.by_to[jid_bare(to)];
		if r then r.skip = true; end
	end

	function pump_pauses()
		local budget = resend_turn;
		local turns = PQ.tail - PQ.head + 1; -- each session once per turn
		local sent_any, now = false, time_now();
		while budget > 0 and turns > 0 and PQ.head <= PQ.tail do
			turns = turns - 1;
			local session = PQ.ring[PQ.head];
			PQ.ring[PQ.head] = nil;
			PQ.head = PQ.head + 1;
			local job = PQ.jobs[session];
			local sent = 0;
			if job and not session.destroyed then
				local ready = true;
				if job.after_answer and now - job.since < pause_answer_wait then
					local ok, backlog = pcall(write_backlog, session);
					ready = not ok or backlog == 0;
				end
				if ready then job.after_answer = nil; end
				local list, remote = job.list, 0;
				while ready and remote < resend_batch and sent < resend_turn and job.pos <= #list do
					local r = list[job.pos];
					job.pos = job.pos + 1;
					if still_recipient(session, r) then
						local ok, went, to_remote = pcall(send_pause_state, session, r, job.condition);
						if not ok then
							module:log("error", "Error in pause annotation: %s", tostring(went));
						elseif went then
							sent = sent + 1;
							if to_remote then remote = remote + 1; end
						end
					end
				end
				if job.pos > #list then
					PQ.jobs[session] = nil;
					module:log("debug", "%s: %s annotations sent", session.full_jid or "?",
						job.condition or "clearing");
				end
			else
				PQ.jobs[session] = nil;
			end
			if sent > 0 then sent_any = true; end
			budget = budget - math_max(sent, 1);
			if PQ.jobs[session] then
				PQ.tail = PQ.tail + 1;
				PQ.ring[PQ.tail] = session;
			else
				PQ.queued[session] = nil;
			end
		end
		if PQ.head <= PQ.tail and not stopping then
			-- Only connections still writing their answer: look again a
			-- little later rather than at every turn.
			return sent_any and resend_interval or math_max(resend_interval, 0.01);
		end
		PQ.pumping = false;
		if PQ.head > PQ.tail then PQ.ring, PQ.head, PQ.tail = {}, 1, 0; end
		return nil;
	end
	S.pause_resume_after_reload = function ()
		PQ.pumping = false;
		if PQ.head <= PQ.tail then start_pause_pump(); end
	end

	-- pause annotates the session's presence connection-paused for everyone
	-- who has it, and remembers them; resume clears the annotation for them.
	local function pause(session, why)
		local list = presence_recipients(session);
		-- Those whose clearing has not left yet still show the pause.
		local showing = {};
		local job = PQ.jobs[session];
		if job and job.condition == nil then
			for i = job.pos, #job.list do
				local r = job.list[i];
				if still_recipient(session, r) then showing[r.to] = r.stanza; end
			end
		end
		paused[session] = list;
		local todo = {};
		for _, r in ipairs(list) do
			if showing[r.to] ~= r.stanza then todo[#todo + 1] = r; end
		end
		module:log("debug", "%s %s: annotating its presence to %d entities", session.full_jid, why, #todo);
		queue_pause_state(session, todo, "connection-paused");
	end

	local function resume(session, why, after_answer)
		local was = paused[session];
		if not was then return; end
		paused[session] = nil;
		-- Those a queued pause has not reached yet get nothing, unless a
		-- probe answer or an enable told them of the pause (copied).
		local unsent = {};
		local job = PQ.jobs[session];
		if job and job.condition ~= nil then
			for i = job.pos, #job.list do
				local r = job.list[i];
				if not r.copied then unsent[r] = true; end
			end
		end
		-- Only those who may still see the presence (a contact whose
		-- subscription another resource cancelled meanwhile got an
		-- unavailable): checked again as each leaves.
		local list = {};
		for _, r in ipairs(was) do
			if not unsent[r] and still_recipient(session, r) then list[#list + 1] = r; end
		end
		module:log("debug", "%s %s: clearing the annotation for %d entities (%d in its pause list)",
			session.full_jid, why, #list, #was);
		queue_pause_state(session, list, nil, after_answer);
	end

	-- recipient_entry is the entry of session's pause list that covers a
	-- copy of its presence sent to `to`: a contact's bare JID, or the full
	-- JID of the user's own other resource; nil for anyone else.
	local function recipient_entry(session, to)
		local bare = jid_bare(to);
		if bare == self_bare_of(session) then
			return { to = to, stanza = session.presence, kind = "self" };
		end
		local item = session.roster and session.roster[bare];
		if item and (item.subscription == "both" or item.subscription == "from") then
			return { to = bare, stanza = session.presence, kind = "contact" };
		end
		return nil;
	end

	-- note_paused_recipient adds r to the session's pause list unless an
	-- entry for its recipient is there: the resume clears it too. The
	-- entry is marked copied: the recipient got the pause annotation now,
	-- so the resume clears it even if the queued pause has not reached it.
	local function note_paused_recipient(session, list, r)
		local index = list.index;
		if not index then
			index = {};
			for _, e in ipairs(list) do index[e.to] = e; end
			list.index = index;
		end
		local e = index[r.to];
		if e == true then -- indexed by the code before a reload
			for _, x in ipairs(list) do
				if x.to == r.to then e = x; break; end
			end
		end
		if e then
			if e ~= true then e.copied = true; end
			return;
		end
		r.copied = true;
		index[r.to] = r;
		list[#list + 1] = r;
		if r.kind ~= "self" then return; end
		-- Every new resource of the user adds one (its full JID): entries
		-- of resources gone since go when they are twice as many as the
		-- last count, so the list follows the live resources, not all
		-- those bound during the pause.
		list.selfs = (list.selfs or 0) + 1;
		if list.selfs <= (list.selfs_limit or 16) then return; end
		local n, j, selfs = #list, 0, 0;
		for i = 1, n do
			local x = list[i];
			list[i] = nil;
			if x.kind == "self" and x ~= r and prosody.full_sessions[x.to] == nil then
				index[x.to] = nil;
			else
				j = j + 1;
				list[j] = x;
				if x.kind == "self" then selfs = selfs + 1; end
			end
		end
		list.selfs, list.selfs_limit = selfs, math_max(16, 2 * selfs);
	end

	-- send_paused_copy sends the paused session's presence to `to`,
	-- annotated connection-paused, as a possible first copy.
	local function send_paused_copy(session, to)
		local pres = paused_copy(session, session.presence, to, "connection-paused");
		first_copies[pres] = true;
		send_as(session, pres);
	end

	-- Prosody sends a session's stored presence (session.presence itself,
	-- with a `to`) again to answer a probe, and to the user's new
	-- resources. While the session is paused that presence is stale: the
	-- copy leaves annotated connection-paused instead, and its recipient
	-- gets the empty annotation when the pause ends. A plain answer would
	-- tell a prober that the session is live, and would take the place of
	-- a pause annotation still queued for it.
	local function annotate_paused_resend(event)
		local origin, stanza = event.origin, event.stanza;
		local list = paused[origin];
		local to = stanza.attr.to;
		if not list or not to or stanza.attr.type ~= nil or own_stanzas[stanza] or stanza ~= origin.presence then
			return;
		end
		if not (pause_remote or hosts[jid_host(to)] ~= nil) then return; end
		-- What the original would have done: the recipient sees the
		-- session's presence again.
		track_hidden(origin, to, nil);
		local r = recipient_entry(origin, to);
		if r then note_paused_recipient(origin, list, r); end
		send_paused_copy(origin, to);
		return true;
	end
	-- An error in it lets Prosody's own (plain) answer go, rather than
	-- ending mod_presence's loop over the user's other resources.
	local function annotate_paused_resend_safely(event)
		local ok, handled = pcall(annotate_paused_resend, event);
		if not ok then
			module:log("error", "Error in paused probe answer: %s", tostring(handled));
			return nil;
		end
		return handled;
	end
	module:hook("pre-presence/full", annotate_paused_resend_safely, 1500);
	module:hook("pre-presence/bare", annotate_paused_resend_safely, 1500);

	-- pauses_of sends session, which just enabled annotations, the
	-- presence of every paused session of `bare` (a user of this host) that
	-- it may see, annotated, and notes it for the resume. Other hosts of
	-- this server with mod_psa call it through this host's shared state:
	-- only this host's instance builds presences in its users' names.
	local function pauses_of(bare, session)
		local user = bare_sessions[bare];
		for _, other in pairs(user and user.sessions or {}) do
			local list = paused[other];
			if list and other ~= session and not other.destroyed and other.presence then
				local r = recipient_entry(other, session.full_jid);
				local hidden = hidden_from[other];
				if r and not (hidden and hidden[jid_bare(session.full_jid)]) then
					note_paused_recipient(other, list, r);
					safely("paused copy", send_paused_copy, other, session.full_jid);
				end
			end
		end
	end
	S.pauses_of = pauses_of;

	-- A session that enables annotations got its contacts' paused
	-- presences plain (the answers to its first presence's probes): it gets
	-- them again, annotated. Its own other resources and the contacts it
	-- is subscribed to, on this host and on the other hosts of this server
	-- that load mod_psa. A session enabled from the caps cache before its
	-- initial presence went out gets nothing here: the probes of that
	-- presence are answered annotated.
	function pauses_on_enable(session)
		if not session.presence then return; end
		pauses_of(self_bare_of(session), session);
		for contact, item in pairs(session.roster or {}) do
			if contact and (item.subscription == "both" or item.subscription == "to") then
				local h = jid_host(contact);
				if h == host then
					pauses_of(contact, session);
				elseif bare_sessions[contact] and hosts[h] and hosts[h].type == "local"
					and is_module_loaded(h, module.name) then
					local f = module:shared("/"..h.."/"..module.name.."/state").pauses_of;
					if f then safely("paused copies of "..h, f, contact, session); end
				end
			end
		end
	end

	module:hook("smacks-hibernation-start", function (event)
		safely("hibernation-start", pause, event.origin, "hibernates");
	end);

	-- Prosody 13 says when a session takes over another's connection (and
	-- its filter chain), before the resumption completes (which SASL2 may
	-- stage): the filter goes back on at once. 0.12 has no such event.
	module:hook_global("c2s-session-updated", function (event)
		local session = event.session;
		if session and session.host == host then
			if event.from_session then canonical[event.from_session] = session; end
			install_filter(session);
		end
	end);

	module:hook("smacks-hibernation-end", function (event)
		local session, temporary = event.resumed, event.origin;
		if not session then return; end
		safely("hibernation-end", function ()
			canonical[temporary] = session;
			install_filter(session);
			resume(session, "resumed", true);
		end);
	end);

	-- Local session paused (BOSH, XEP-0206). mod_bosh keeps a session whose
	-- client holds no request open for bosh_max_inactivity, queueing what it
	-- cannot deliver, and fires no event when that starts or ends. A BOSH
	-- session that held no request and made no new one (its rid did not
	-- move) for psa_bosh_pause_after seconds is paused; its next request
	-- ends the pause.
	local bosh = kept("bosh", weak_table); -- session -> { rid, idle_since }

	local function watch_bosh(session)
		if session.bosh_version and not bosh[session] then
			bosh[session] = { rid = session.rid };
		end
	end

	local function check_bosh(session, w, now)
		local requests = session.requests;
		if (requests and #requests > 0) or session.rid ~= w.rid then
			w.rid, w.idle_since = session.rid, nil;
			resume(session, "(BOSH) polls again");
			return;
		end
		w.idle_since = w.idle_since or now;
		if not paused[session] and session.presence and now - w.idle_since >= bosh_pause_after then
			pause(session, "(BOSH) holds no request");
		end
	end

	if bosh_pause_after > 0 then
		-- mod_bosh is a global module: its event is global.
		module:hook_global("bosh-session", function (event)
			if event.session.host == host then watch_bosh(event.session); end
		end);
		for _, session in pairs(prosody.full_sessions) do
			if session.host == host then watch_bosh(session); end
		end
		-- While a session is paused, look ten times as often, so that its
		-- contacts learn quickly that it polls again.
		local tick = math_min(1, bosh_pause_after / 4);
		local paused_tick = math_min(0.1, tick);
		module:add_timer(tick, function ()
			if stopping then return; end
			local now, any_paused = time_now(), false;
			for session, w in pairs(bosh) do
				if session.destroyed then
					bosh[session] = nil;
				elseif session.full_jid then -- bound
					safely("bosh", check_bosh, session, w, now);
					any_paused = any_paused or paused[session] ~= nil;
				end
			end
			return any_paused and paused_tick or tick;
		end);
	end

	module:hook("resource-unbind", function (event)
		local session = event.session;
		safely("unbind", forget_session_presences, session);
		psa_state[session], paused[session], directed_store[session], bosh[session] = nil, nil, nil, nil;
		PQ.jobs[session] = nil;
		hidden_from[session] = nil;
	end);

	-- Outage hooks.
	function hooks.relevant(domain)
		return (remembered_by_domain[domain] or 0) > 0;
	end

	local function each_entry_of(domain, f)
		for session, mem in pairs(memory) do
			if is_enabled(session) and not session.destroyed then
				local list = {};
				for _, entry in mem:items() do
					if entry.domain == domain then list[#list + 1] = entry; end
				end
				for _, entry in ipairs(list) do
					f(session, entry);
				end
			end
		end
	end

	function hooks.on_outage(domain)
		local text = describe(text_server, domain);
		local n = 0;
		each_entry_of(domain, function (session, entry)
			queue_resend(session, entry, "server-unavailable", text);
			n = n + 1;
		end);
		module:log("info", "Re-sending %d presences annotated server-unavailable for %s", n, domain);
	end

	-- gone tells session that full is unavailable (its unavailable was lost
	-- in the outage) and forgets it, unless a newer presence replaced entry.
	local function gone(session, full, entry)
		local mem = memory[session];
		if session.destroyed or not mem or mem:get(full) ~= entry then return; end
		forget(session, full);
		measure_unconfirmed(1);
		module:log("debug", "%s was not confirmed after the restore: unavailable to %s", full, session.full_jid);
		deliver_to_session(st.presence({ type = "unavailable", from = full, to = session.full_jid }));
	end

	-- A directed-presence sender cannot be probed (its server would answer
	-- a non-subscriber `unsubscribed`): ask its resource for disco#info.
	-- Its server answers service-unavailable or recipient-unavailable for a
	-- resource that is not online; a live client answers disco#info.
	local gone_conditions = { ["service-unavailable"] = true, ["recipient-unavailable"] = true, ["item-not-found"] = true };
	local function check_directed(domain, full, waiting)
		local iq = st.iq({ type = "get", from = host, to = full, id = "psa-res-"..new_id() })
			:tag("query", { xmlns = xmlns_disco_info }):up();
		send_bulk(iq, ping_timeout, function () end, function (err)
			if links[domain] then return; end -- down again: the next restore decides
			local reply = err and err.context and err.context.stanza;
			if not (reply and reply.attr.from == full and gone_conditions[err.condition]) then return; end
			-- Only the remote server's answer counts, not a bounce of our own
			-- s2s layer (Prosody 13 bounces what a dying session did not
			-- acknowledge as recipient-unavailable, "from" the full JID).
			local origin = err.context.origin;
			if not origin or origin.dummy or (origin.type ~= "s2sin" and origin.type ~= "s2sout") then return; end
			for session, entry in pairs(waiting) do
				gone(session, full, entry);
			end
		end);
	end

	local settle; -- recursive
	-- settle runs once the answers to the probes sent after a restore are
	-- in: the domain handles the probes and then our ping in order, and
	-- sends the answers and the pong over the same connection, so they reach
	-- us in that order. A remembered resource of a probed contact that was
	-- not confirmed by then is gone; directed-presence senders are asked.
	function settle(domain, probed, directed, tries)
		local iq = st.iq({ type = "get", from = host, to = domain, id = "psa-settle-"..new_id() })
			:tag("ping", { xmlns = xmlns_ping }):up();
		local function answered()
			if links[domain] then return; end -- down again: the next restore decides
			for session, entries in pairs(probed) do
				for full, entry in pairs(entries) do
					gone(session, full, entry);
				end
			end
			for full, waiting in pairs(directed) do
				check_directed(domain, full, waiting);
			end
		end
		module:send_iq(iq, nil, ping_timeout):next(answered, function (err)
			local reachable = classify_ping_error(err);
			if reachable then
				answered();
			elseif reachable == nil and (tries or 0) < 3 and not links[domain] then
				-- Failed locally (evicted): another ping, still after the probes.
				settle(domain, probed, directed, (tries or 0) + 1);
			end
		end);
	end

	local probing = {}; -- domain -> the restore whose probes are being sent

	function hooks.on_restore(domain)
		local n, probes = 0, {};
		local probed, directed, any = {}, {}, false;
		each_entry_of(domain, function (session, entry)
			queue_resend(session, entry, nil);
			n = n + 1;
			local from = entry.stanza.attr.from;
			local contact = jid_bare(from);
			local item = session.roster and session.roster[contact];
			if item and (item.subscription == "both" or item.subscription == "to") then
				if probe_after_restore then
					probes[session.full_jid.." "..contact] = { from = session.full_jid, to = contact };
					probed[session] = probed[session] or {};
					probed[session][from] = entry;
					any = true;
				end
			elseif probe_after_restore then
				directed[from] = directed[from] or {};
				directed[from][session] = entry;
				any = true;
			end
		end);
		-- The probes all go over the one s2s connection to the domain: in
		-- slices too, for the reason the re-sends are (see above). The
		-- settling ping follows the last of them.
		local list = {};
		for _, p in pairs(probes) do list[#list + 1] = p; end
		module:log("info", "Re-sending %d presences with an empty annotation, probing %d contacts for %s", n, #list, domain);
		if not any then return; end
		local next_probe, token = 1, {};
		probing[domain] = token;
		local function send_probes()
			-- Down again, or restored again since (its own probes run): the
			-- next restore decides.
			if stopping or links[domain] or probing[domain] ~= token then
				if probing[domain] == token then probing[domain] = nil; end
				return nil;
			end
			local last = math_min(#list, next_probe + resend_batch - 1);
			for i = next_probe, last do
				module:send(st.presence({ type = "probe", from = list[i].from, to = list[i].to }));
			end
			next_probe = last + 1;
			if next_probe <= #list then return resend_interval; end
			probing[domain] = nil;
			settle(domain, probed, directed);
			return nil;
		end
		if send_probes() then
			module:add_timer(resend_interval, send_probes);
		end
	end

end

---------------------------------------------------------------------------
-- MUC component
---------------------------------------------------------------------------

if is_muc then
	local muc = module:depends("muc");

	-- The occupants' real JIDs that the service tracks: the rooms each is in
	-- and the caps verdict of its presence. Only sessions that a room
	-- accepted are tracked (a refused join, or any other presence from
	-- someone who is not an occupant, takes no place), at most
	-- max_muc_tracked of them, and at most max_muc_per_domain from one
	-- domain not hosted on this server. A domain at its quota loses its own
	-- least recently seen entry to a new one; a full table loses the least
	-- recently seen entry of the domain holding the most (the new entry's own
	-- domain when it is one of those). So a flood from one domain (a hostile
	-- server can join any number of resources) evicts only its own entries
	-- once it holds its quota, and never an entry of a domain that holds
	-- fewer than it.
	--
	-- It also counts, per domain, the (real JID, room) pairs from there, so
	-- that "does any occupant come from this domain" (asked for every lost
	-- s2s session and every keepalive) costs one lookup, not a scan of every
	-- room and occupant; a domain that lost entries is looked for by a scan.
	local T = kept("muc_tracked", function ()
		return {
			entries = {}; -- real JID -> { jid, domain, rooms = { [room JID] = true }, caps, newer, older }
			domains = {}; -- domain -> { count, newest, oldest } (entries linked newest to oldest)
			buckets = {}; -- count -> { [domain] = true }: the domains holding that many
			max = 0; -- the highest count
			total = 0;
			dropped = {}; dropped_count = 0; -- domains that lost entries: some occupants may be untracked
			dropped_all = false; -- too many of those to list: any domain may have untracked occupants
		};
	end); -- caps = { node, ver, hash, status, gen }
	local by_domain = kept("muc_occupants_by_domain", function () return {}; end); -- domain -> count
	local current_annotation; -- set while publicising an annotated presence
	local left_room; -- forward

	local function count_domain(domain, delta)
		local n = (by_domain[domain] or 0) + delta;
		by_domain[domain] = n > 0 and n or nil;
	end

	local function set_count(domain, d, count)
		local from, buckets = d.count, T.buckets;
		d.count = count;
		if from > 0 then
			buckets[from][domain] = nil;
			if next(buckets[from]) == nil then buckets[from] = nil; end
		end
		if count > 0 then
			buckets[count] = buckets[count] or {};
			buckets[count][domain] = true;
		end
		if count > T.max then T.max = count; end
		while T.max > 0 and not buckets[T.max] do T.max = T.max - 1; end
	end

	local function unlink(d, e)
		if e.newer then e.newer.older = e.older; else d.newest = e.older; end
		if e.older then e.older.newer = e.newer; else d.oldest = e.newer; end
		e.newer, e.older = nil, nil;
	end

	local function link_newest(d, e)
		e.older = d.newest;
		if d.newest then d.newest.newer = e; else d.oldest = e; end
		d.newest = e;
	end

	local function untrack(real_jid, why)
		local e = T.entries[real_jid];
		if not e then return; end
		local domain, d = e.domain, T.domains[e.domain];
		T.entries[real_jid] = nil;
		unlink(d, e);
		T.total = T.total - 1;
		set_count(domain, d, d.count - 1);
		if d.count == 0 then T.domains[domain] = nil; end
		for _ in pairs(e.rooms) do count_domain(domain, -1); end
		if why and next(e.rooms) then
			module:log("debug", "Forgetting the caps and rooms of occupant %s (%s)", real_jid, why);
			if not T.dropped[domain] and not T.dropped_all then
				T.dropped[domain] = true;
				T.dropped_count = T.dropped_count + 1;
				if T.dropped_count > max_muc_tracked then
					T.dropped, T.dropped_count, T.dropped_all = {}, 0, true;
				end
			end
		end
	end

	-- Makes room for a new entry from domain.
	local function make_room(domain)
		local d = T.domains[domain];
		if d and not hosts[domain] and d.count >= max_muc_per_domain then
			untrack(d.oldest.jid, "the quota of "..domain.." is full");
		elseif T.total >= max_muc_tracked then
			local victim = (d and d.count == T.max) and domain or next(T.buckets[T.max]);
			untrack(T.domains[victim].oldest.jid, "the table is full");
		end
	end

	-- track returns real_jid's entry, made the most recently seen of its
	-- domain, or a new one.
	local function track(real_jid)
		local e = T.entries[real_jid];
		local domain = e and e.domain or jid_host(real_jid);
		if not domain then return nil; end
		if not e then
			make_room(domain);
			e = { jid = real_jid, domain = domain, rooms = {} };
			T.entries[real_jid] = e;
			T.total = T.total + 1;
			local d = T.domains[domain];
			if not d then
				d = { count = 0 };
				T.domains[domain] = d;
			end
			set_count(domain, d, d.count + 1);
		else
			unlink(T.domains[domain], e);
		end
		link_newest(T.domains[domain], e);
		return e;
	end

	-- Options lowered since the table was filled (a reload).
	for domain, d in pairs(T.domains) do
		while not hosts[domain] and d.count > max_muc_per_domain do
			untrack(d.oldest.jid, "the quota was lowered");
		end
	end
	while T.total > max_muc_tracked do
		untrack(T.domains[next(T.buckets[T.max])].oldest.jid, "the table was shrunk");
	end

	local function jid_enabled(real_jid)
		local e = T.entries[real_jid];
		return e ~= nil and e.caps ~= nil and e.caps.status == "on";
	end

	-- resolve_jid_caps takes the caps c of a tracked occupant's presence. It
	-- returns true when the verdict turned "on" at once (and the unreachable
	-- occupants were announced to it).
	local function resolve_jid_caps(real_jid, c)
		local e = T.entries[real_jid];
		if not e or not c then return false; end -- no caps: keep what we know
		local state = e.caps;
		local hash, node, ver = c.attr.hash, c.attr.node, c.attr.ver;
		if state and state.node == node and state.ver == ver and state.hash == hash then return false; end
		state = { node = node, ver = ver, hash = hash, gen = ((state and state.gen) or 0) + 1 };
		e.caps = state;
		local function set(status, why)
			local old = state.status;
			state.status = status;
			module:log("debug", "Annotations for occupant %s: %s (%s)", real_jid, status, why);
			if status == "on" and old ~= "on" then
				safely("occupant enabled", muc_on_jid_enabled, real_jid);
				return true;
			end
			return false;
		end
		if hash ~= "sha-1" or not ver or not node then
			return set("off", "caps without a sha-1 hash");
		end
		local cached = caps_cache:get(ver);
		if cached ~= nil then
			return set(cached and "on" or "off", "caps cache");
		end
		local link = links[e.domain];
		if link and link.state == "down" then
			state.status = "off"; -- cannot ask now; asked again with its next presence
			state.ver = nil;
			return false;
		end
		state.status = "pending";
		local gen = state.gen;
		ask_caps(ver, {
			to = real_jid, node = node;
			valid = function ()
				local cur = T.entries[real_jid];
				return cur ~= nil and cur.caps == state and state.gen == gen;
			end;
			done = function (has_psa, why)
				set(has_psa and "on" or "off", why);
			end;
		});
		return false;
	end

	-- A real JID's caps verdict is forgotten when it has left the last room
	-- it was in, not when it leaves one.
	local function joined_room(real_jid, room_jid)
		local e = track(real_jid);
		if e and not e.rooms[room_jid] then
			e.rooms[room_jid] = true;
			count_domain(e.domain, 1);
		end
		return e;
	end

	left_room = function (real_jid, room_jid)
		local e = T.entries[real_jid];
		if not e then return; end
		if e.rooms[room_jid] then
			e.rooms[room_jid] = nil;
			count_domain(e.domain, -1);
		end
		if next(e.rooms) == nil then untrack(real_jid); end
	end

	-- Occupants that joined before the module was loaded (or before this
	-- table existed): track them once. Caps known to a version of this
	-- module that kept them apart are taken over.
	if not S.muc_tracked_indexed then
		for room in muc.live_rooms() do
			for _, occupant in room:each_occupant() do
				for real_jid in occupant:each_session() do
					joined_room(real_jid, room.jid);
				end
			end
		end
		S.muc_tracked_indexed = true;
		if S.jid_caps then
			for real_jid, state in S.jid_caps:items() do
				if T.entries[real_jid] then T.entries[real_jid].caps = state; end
			end
		end
		S.jid_caps, S.jid_rooms, S.jid_rooms_evicted, S.occupants_by_domain, S.rooms_indexed = nil, nil, nil, nil, nil;
	end

	-- A session the room accepted (a join, or a desynced occupant joining
	-- again): track it, with the caps of its join presence. With caps already
	-- known, and domains in outage, announce their occupants to it.
	module:hook("muc-occupant-session-new", function (event)
		local real_jid, room = event.jid, event.room;
		if not (real_jid and room) then return; end
		safely("occupant joined", function ()
			joined_room(real_jid, room.jid);
			local c = event.stanza and event.stanza:get_child("c", xmlns_caps);
			if not resolve_jid_caps(real_jid, c) and jid_enabled(real_jid) then
				muc_on_jid_enabled(real_jid);
			end
		end);
	end, 1000);

	-- An occupant kicked or gone with its last session: its sessions left.
	module:hook("muc-occupant-left", function (event)
		local occupant, room = event.occupant, event.room;
		if not (occupant and room) then return; end
		safely("occupant left", function ()
			for real_jid in occupant:each_session() do
				left_room(real_jid, room.jid);
			end
		end);
	end);

	-- After a reload: occupants whose disco#info the old code was asking
	-- are asked again, with the caps of their presence in a room they are in.
	S.muc_resume_after_reload = function ()
		local stale = {};
		for real_jid, e in pairs(T.entries) do
			if e.caps and e.caps.status == "pending" then stale[#stale + 1] = real_jid; end
		end
		for _, real_jid in ipairs(stale) do
			local e = T.entries[real_jid];
			e.caps = nil;
			local c;
			for room_jid in pairs(e.rooms) do
				local room = muc.get_room_from_jid(room_jid);
				local occupant = room and room:get_occupant_by_real_jid(real_jid);
				local pr = occupant and occupant:get_presence(real_jid);
				c = pr and pr:get_child("c", xmlns_caps);
				if c then break; end
			end
			if c then safely("occupant caps", resolve_jid_caps, real_jid, c); end
		end
	end

	-- Presences to rooms carry the occupants' caps. Only an occupant's
	-- presence counts here (a presence update); a join counts once the room
	-- accepted it (muc-occupant-session-new above).
	local function presence_to_room(event)
		local origin, stanza = event.origin, event.stanza;
		local from = stanza.attr.from;
		if not from or not jid_resource(from) then return; end
		local t = stanza.attr.type;
		if t == nil then
			safely("occupant caps", function ()
				local room = muc.get_room_from_jid(jid_bare(stanza.attr.to));
				if room and room:get_occupant_by_real_jid(from) then
					joined_room(from, room.jid);
					resolve_jid_caps(from, stanza:get_child("c", xmlns_caps));
				end
			end);
		elseif t == "unavailable" then
			safely("occupant left", left_room, from, jid_bare(stanza.attr.to));
		end
		-- An error bounced by our own s2s layer (the link to the occupant's
		-- server failed) would make the room kick the occupant: swallow it,
		-- and find out whether the server is reachable.
		if t == "error" and origin.dummy then
			local _, condition = stanza:get_error();
			if condition == "remote-server-not-found" or condition == "remote-server-timeout" then
				local domain = jid_host(from);
				module:log("debug", "Swallowing s2s bounce from %s (%s) so that the occupant is not kicked", from, condition);
				safely("bounce", link_lost, domain, "bounce");
				return true;
			end
		end
	end
	module:hook("presence/full", presence_to_room, 1000);
	module:hook("presence/bare", presence_to_room, 1000);
	for _, name in ipairs({ "presence/full", "presence/bare", "presence/host" }) do
		module:hook(name, strip_into_room, 2000);
	end

	local function bounce_guard(event)
		local origin, stanza = event.origin, event.stanza;
		if stanza.attr.type == "error" and origin.dummy then
			local _, condition = stanza:get_error();
			if condition == "remote-server-not-found" or condition == "remote-server-timeout" then
				module:log("debug", "Swallowing s2s bounce from %s (%s) so that the occupant is not kicked",
					stanza.attr.from or "?", condition);
				safely("bounce", link_lost, jid_host(stanza.attr.from), "bounce");
				return true;
			end
		end
	end
	for _, name in ipairs({ "message/full", "message/bare", "iq/full", "iq/bare" }) do
		module:hook(name, bounce_guard, 1000);
	end

	-- Prosody 13 acknowledges s2s stanzas (XEP-0198): when an s2s session
	-- dies, mod_smacks bounces what it did not acknowledge as
	-- recipient-unavailable from this host, which would kick the occupants
	-- it was for. Drop those stanzas instead (the session's destroyed event
	-- checks the domain); our own pings still bounce, to end their wait.
	module:hook("delivery/failure", function (event)
		local session, stanza = event.session, event.stanza;
		if not (session and (session.type or ""):match("^s2s")) then return; end
		if stanza.name == "iq" and (stanza.attr.id or ""):match("^psa%-") then return; end
		module:log("debug", "Dropping the unacknowledged %s to %s so that the occupant is not kicked",
			stanza.name, stanza.attr.to or "?");
		return true;
	end, 1000);

	-- No stanza is routed to a domain in outage (they are held: see
	-- psa_hold_max), except our own pings, the
	-- answers to IQs that came from there (a reply is never bounced, so it
	-- cannot get an occupant kicked, and the domain that asked is evidently
	-- reachable again: think of a XEP-0410 self-ping right after a heal that
	-- our re-check has not noticed yet), and the dialback elements that set
	-- up the s2s connection.
	local blocked = { message = true, presence = true, iq = true };
	module:hook("route/remote", function (event)
		local link = links[event.to_host];
		if link and link.state == "down" then
			local stanza = event.stanza;
			if not blocked[stanza.name] then return; end
			if stanza.name == "iq" then
				local t = stanza.attr.type;
				if t == "result" or t == "error" then return; end
				if (stanza.attr.id or ""):match("^psa%-ping%-") then return; end
			end
			-- Held until the domain is reachable again (set_up), bounded.
			local held = link.held or {};
			link.held = held;
			if #held >= hold_max then
				table.remove(held, 1);
			end
			if hold_max > 0 then
				held[#held + 1] = { stanza = st.clone(stanza), at = time_now() };
			end
			module:log("debug", "Holding %s to %s during its outage", stanza.name, stanza.attr.to or "?");
			-- If it is back, the sooner we know the better: a user of it may
			-- be waiting for the room's answer to her join.
			link_maybe_back(event.to_host, "a stanza for it is held");
			return true;
		end
	end, 1000);

	module:hook("muc-build-occupant-presence", function (event)
		if current_annotation then
			strip_annotations(event.stanza);
			annotate(event.stanza, host, current_annotation.condition, current_annotation.text);
		end
	end, -1000);

	local function domain_down(domain)
		local link = links[domain];
		return link ~= nil and link.state == "down";
	end

	-- Send occupant's presence, annotated, to the PSA sessions of recipient.
	-- It returns the number of sessions it sent to.
	local function publicise(room, occupant, recipient, annotation)
		if recipient.bare_jid == occupant.bare_jid then return 0; end
		-- Sent to one recipient, publicise_occupant_status skips the room's
		-- presence-broadcast roles (XEP-0045 §10.2 presence broadcast): a
		-- role whose presence the room does not broadcast gets no
		-- annotation either.
		local roles = room.get_presence_broadcast and room:get_presence_broadcast();
		if roles and not roles[occupant.role or "none"] then return 0; end
		local sessions, count = {}, 0;
		for real_jid, pr in recipient:each_session() do
			if pr.attr.type == nil and jid_enabled(real_jid) and not domain_down(jid_host(real_jid)) then
				sessions[real_jid] = pr;
				count = count + 1;
			end
		end
		if count == 0 then return 0; end
		local proxy = setmetatable({ sessions = sessions }, { __index = recipient });
		for _ in pairs(sessions) do measure_annotations(1); end
		current_annotation = annotation;
		local ok, err = pcall(room.publicise_occupant_status, room, occupant,
			st.stanza("x", { xmlns = "http://jabber.org/protocol/muc#user" }),
			nil, nil, nil, nil, false, proxy);
		current_annotation = nil;
		if not ok then
			module:log("error", "Error publicising annotated presence of %s: %s", occupant.nick, tostring(err));
			return 0;
		end
		return count;
	end

	function hooks.relevant(domain)
		if (by_domain[domain] or 0) > 0 then return true; end
		if not (T.dropped_all or T.dropped[domain]) then return false; end
		-- Entries from there were dropped: look for untracked occupants.
		for room in muc.live_rooms() do
			for _, occupant in room:each_occupant() do
				if jid_host(occupant.bare_jid) == domain then return true; end
			end
		end
		if T.dropped[domain] then
			T.dropped[domain] = nil;
			T.dropped_count = T.dropped_count - 1;
		end
		return false;
	end

	-- Announcements in slices, for the reason the VirtualHost's re-sends
	-- are: an outage of a domain with N occupants in a room sends N
	-- presences to each other occupant. The queue holds (room, occupant)
	-- pairs, first in, first out; each turn of the event loop publicises
	-- resend_batch of them to every occupant of the room. What leaves is
	-- built then from the room as it is: an occupant that left, or whose
	-- domain's state changed since (an outage's announcement when the
	-- domain is back, a restore's when it is down again), is skipped.
	local MQ = kept("muc_announce_queue", function ()
		return { items = {}, head = 1, tail = 0, pumping = false, pending = {} };
	end); -- item = { room = room JID, nick = occupant JID, bare = real bare JID, domain, down = bool, cancelled }
	-- pending: room JID.."\0"..occupant JID -> its item in the queue: one per
	-- occupant and room, so the queue is bounded by the occupants.

	local function pump_announcements()
		local done = 0;
		while done < resend_batch and MQ.head <= MQ.tail do
			local item = MQ.items[MQ.head];
			MQ.items[MQ.head] = nil;
			MQ.head = MQ.head + 1;
			local key = item.room.."\0"..item.nick;
			if MQ.pending[key] == item then MQ.pending[key] = nil; end
			if not item.cancelled then done = done + 1; end
			local room = not item.cancelled and muc.get_room_from_jid(item.room);
			local occupant = room and room:get_occupant_by_nick(item.nick);
			if occupant and occupant.bare_jid == item.bare and domain_down(item.domain) == item.down then
				local annotation = { condition = nil };
				if item.down then
					annotation = { condition = "server-unavailable", text = describe(text_muc, item.domain) };
				end
				for _, recipient in room:each_occupant() do
					safely("announce", publicise, room, occupant, recipient, annotation);
				end
			end
		end
		if MQ.head <= MQ.tail and not stopping then return resend_interval; end
		MQ.pumping = false;
		if MQ.head > MQ.tail then
			MQ.items, MQ.head, MQ.tail, MQ.pending = {}, 1, 0, {};
			module:log("debug", "Occupant announcements done: the queue is empty");
		end
		return nil;
	end

	local function start_announcing()
		if MQ.pumping then return; end
		MQ.pumping = true;
		module:add_timer(resend_interval, function ()
			return pump_announcements();
		end);
	end
	S.muc_resume_announcements = function ()
		MQ.pumping = false;
		if MQ.head <= MQ.tail then start_announcing(); end
	end

	local function announce(domain, down)
		local n = 0;
		for room in muc.live_rooms() do
			for _, occupant in room:each_occupant() do
				if jid_host(occupant.bare_jid) == domain then
					local key = room.jid.."\0"..occupant.nick;
					local item = MQ.pending[key];
					if item and item.bare == occupant.bare_jid and not item.cancelled then
						-- Still queued: it never left, and this undoes it.
						if item.down ~= down then
							item.cancelled = true;
							MQ.pending[key] = nil;
						end
					else
						item = { room = room.jid, nick = occupant.nick, bare = occupant.bare_jid, domain = domain, down = down };
						MQ.tail = MQ.tail + 1;
						MQ.items[MQ.tail] = item;
						MQ.pending[key] = item;
					end
					n = n + 1;
				end
			end
		end
		if n > 0 then start_announcing(); end
		return n;
	end

	function hooks.on_outage(domain)
		local n = announce(domain, true);
		module:log("info", "Announcing %d occupants annotated server-unavailable for %s", n, domain);
	end

	function hooks.on_restore(domain)
		local n = announce(domain, false);
		module:log("info", "Announcing %d occupants with an empty annotation for %s", n, domain);
	end

	-- A real JID got annotations enabled while domains are in outage: annotate
	-- the unreachable occupants of the rooms it is in.
	function muc_on_jid_enabled(real_jid)
		if not next(links) then return; end
		for room in muc.live_rooms() do
			local recipient = room:get_occupant_by_real_jid(real_jid);
			if recipient then
				for _, occupant in room:each_occupant() do
					local domain = jid_host(occupant.bare_jid);
					if domain_down(domain) then
						publicise(room, occupant, recipient, { condition = "server-unavailable", text = describe(text_muc, domain) });
					end
				end
			end
		end
	end
end

-- After a reload: requests that the old code had in flight are lost (their
-- answers go to hooks that are gone): ask again. Timers stopped with the old
-- code: schedule the re-checks of domains in outage again.
local function resume_after_reload()
	for domain, link in pairs(links) do
		link.timer, link.timer_due, link.inflight, link.again = nil, nil, nil, nil;
		if link.state == "down" then
			module:log("debug", "Domain %s is in outage since before the reload: re-checking", domain);
			schedule_recheck(domain, link);
		else
			check_domain(domain, "reloaded during a check");
		end
	end
	if is_user_host then
		for _, session in pairs(prosody.full_sessions) do
			local state = session.host == host and psa_state[session];
			if state and state.status == "pending" then
				state.status, state.ver = nil, nil;
				resolve_caps(session, session.presence and session.presence:get_child("c", xmlns_caps));
			end
		end
	end
	if S.muc_resume_after_reload then
		S.muc_resume_after_reload();
	end
	-- The old code's timers stopped with it: drain the re-sends and
	-- announcements it queued.
	RQ.pumping = false;
	if RQ.head <= RQ.tail then start_pump(); end
	if S.muc_resume_announcements then S.muc_resume_announcements(); end
	if S.pause_resume_after_reload then S.pause_resume_after_reload(); end
end
if S.loaded then
	safely("reload", resume_after_reload);
end
S.loaded = true;

function module.unload()
	for _, link in pairs(links) do
		if link.timer then link.timer:stop(); end
	end
	if is_user_host then
		for _, session in pairs(prosody.full_sessions) do
			if session.host == host then
				filters.remove_filter(session, "stanzas/out", c2s_out_filter);
			end
		end
	end
end
