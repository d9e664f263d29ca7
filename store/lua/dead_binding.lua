-- ClearDeadBinding (reconciler). KEYS[1] conv. ARGV: prefix, now, cid.
-- A conversation bound to a workspace Redis has no record of (lost with a
-- partial flush, or expired) is bound to nothing that can serve: end the
-- binding as lost so the next execute provisions.
local ck, cid = KEYS[1], ARGV[3]
local bound = redis.call('HGET', ck, 'workspace') or ''
if bound == '' or redis.call('EXISTS', key_ws(bound)) == 1 then return 0 end
settle(cid, ck, bound, 'lost', 'workspace unknown to the state store')
return 1
