-- AppendRunEvents. KEYS[1] run_log.
-- ARGV: prefix, now, max_events, then one or more entries, each: first
-- (the id of its first event), n (how many events), then one value per
-- event ("<type>\n<data>") of the consecutive events first, first+1, ...
-- (see log_events in the prelude). The entries are appended in order, so
-- a failure stores a prefix of them, never an entry after a missing one.
-- Returns how many events were stored.
local max = tonumber(ARGV[3])
local stored = 0
local i = 4
while i <= #ARGV do
  local first, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local vals = {}
  for j = 1, n do vals[j] = ARGV[i + 1 + j] end
  stored = stored + log_events(KEYS[1], max, first, vals)
  i = i + 2 + n
end
return stored
