-- AppendRunEvents. KEYS[1] run_log.
-- ARGV: prefix, now, max_events, first (the id of the first event), then
-- one value per event ("<type>\n<data>") of the consecutive events first,
-- first+1, ... One stream entry holds them: id "<last>-<first>", field
-- "<k>" the event first+k. Events the log already holds (a relay that took
-- over re-sends them) are skipped, never stored twice; the log keeps the
-- entries holding its newest max_events events (MINID).
local max, first = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #ARGV - 4
local last = first + n - 1
local from = first
-- Only an entry overlapping this batch has an id >= first: normally none,
-- so this reads nothing.
local top = redis.call('XREVRANGE', KEYS[1], '+', ARGV[4], 'COUNT', 1)
if #top > 0 then
  local stored = tonumber(string.match(top[1][1], '^(%d+)-'))
  if stored >= last then return 0 end
  from = stored + 1
end
-- A batch longer than the log keeps only its newest max_events.
local low = last - max + 1
if low > from then from = low end
if low < 0 then low = 0 end
local args = {KEYS[1], 'MINID', '=', string.format('%.0f', low),
  string.format('%.0f', last) .. '-' .. string.format('%.0f', from)}
for i = from - first + 5, #ARGV do
  args[#args + 1] = tostring(i - (from - first + 5))
  args[#args + 1] = ARGV[i]
end
redis.call('XADD', unpack(args))
return last - from + 1
