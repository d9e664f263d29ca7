-- CreateRun. KEYS[1] run, KEYS[2] conv_runs.
-- ARGV: prefix, now, rid, keep (runs listed per conversation), then field/value pairs.
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if create_run(KEYS[1], KEYS[2], ARGV[3], tonumber(ARGV[4]), fields) then return 1 end
return 0
