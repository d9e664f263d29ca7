-- AppendRunEvents. KEYS[1] run_log.
-- ARGV: prefix, now, max_events, first (the id of the first event), then
-- one value per event ("<type>\n<data>") of the consecutive events first,
-- first+1, ... (see log_events in the prelude).
local vals = {}
for i = 5, #ARGV do vals[#vals + 1] = ARGV[i] end
return log_events(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]), vals)
