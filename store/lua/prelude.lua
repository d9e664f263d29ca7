-- Shared helpers, prepended to every script (store/store.go scriptSource).
-- Convention: ARGV[1] is the key prefix, ARGV[2] the caller's clock in unix ms.
-- Keys come in through KEYS[] or from the key_* helpers generated from
-- store.Schema in place of the marker line below; never from literals.
local P = ARGV[1]
local NOW = ARGV[2]

-- @key-helpers@

-- encode returns the hash at key as a JSON object of strings, '' if absent.
local function encode(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return '' end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return cjson.encode(t)
end

-- live reports whether workspace wid is known and not stopped.
local function live(wid)
  if wid == nil or wid == '' then return false end
  local st = redis.call('HGET', key_ws(wid), 'state')
  return st ~= false and st ~= 'stopped'
end

-- changed bumps the conversation's revision and publishes its new snapshot
-- on its channel: every conversation change goes through here.
local function changed(cid, ck)
  redis.call('HINCRBY', ck, 'rev', 1)
  redis.call('HSET', ck, 'updated_at', NOW)
  redis.call('PUBLISH', key_conv_events(cid), encode(ck))
end

-- settle ends the conversation's current binding (if any) in state st:
-- the binding is cleared and the generation advances, so the next start
-- uses a new client token.
local function settle(cid, ck, wid, st, reason)
  redis.call('HSET', ck, 'state', st, 'workspace', '', 'endpoint', '', 'error', reason)
  if wid ~= '' then
    redis.call('HSET', ck, 'previous_workspace', wid)
    redis.call('ZREM', key_lastuse(), wid)
  end
  redis.call('HINCRBY', ck, 'generation', 1)
  changed(cid, ck)
end

-- pool_changed tells followers of the warm pool (the replenisher, tests)
-- that its inventory changed; they re-read the counts.
local function pool_changed()
  redis.call('PUBLISH', key_pool_events(), NOW)
end

-- leave_pool removes wid from every pool set and reports whether it was
-- in any.
local function leave_pool(wid)
  local n = redis.call('ZREM', key_pool_available(), wid)
    + redis.call('ZREM', key_pool_claimed(), wid)
    + redis.call('ZREM', key_pool_starting(), wid)
  return n > 0
end

-- claim_conv makes owner the owner of conversation cid (hash ck) if it has
-- none: 'created', 'ok' (owner owns it already) or 'not_owner'.
local function claim_conv(ck, owner, tenant)
  local cur = redis.call('HGET', ck, 'owner')
  if cur and cur ~= '' then
    if cur ~= owner then return 'not_owner' end
    return 'ok'
  end
  redis.call('HSET', ck, 'owner', owner, 'tenant', tenant, 'updated_at', NOW)
  redis.call('HSETNX', ck, 'created_at', NOW)
  redis.call('HSETNX', ck, 'state', 'none')
  redis.call('HSETNX', ck, 'generation', 0)
  redis.call('HSETNX', ck, 'rev', 0)
  return 'created'
end

-- take_lease takes the lease (or lock) hash lk for holder for ttl ms, or
-- extends it if holder has it; false while another holder's is unexpired.
-- Expiry is judged by the caller's clock (NOW); PEXPIRE only
-- garbage-collects the key.
local function take_lease(lk, holder, ttl)
  local cur = redis.call('HMGET', lk, 'holder', 'expires')
  if cur[1] and cur[1] ~= holder and tonumber(cur[2] or '0') > tonumber(NOW) then
    return false
  end
  redis.call('HSET', lk, 'holder', holder, 'expires', tonumber(NOW) + ttl)
  redis.call('PEXPIRE', lk, ttl)
  return true
end

-- create_run records run rid (hash rk) of the conversation whose run list
-- is crk, with the field/value pairs fields, keeping the list's newest
-- keep; false if the id is taken.
local function create_run(rk, crk, rid, keep, fields)
  if redis.call('EXISTS', rk) == 1 then return false end
  redis.call('HSET', rk, 'created_at', NOW, 'updated_at', NOW, unpack(fields))
  redis.call('ZADD', crk, NOW, rid)
  redis.call('ZREMRANGEBYRANK', crk, 0, -(keep + 1))
  redis.call('PERSIST', crk)
  redis.call('ZADD', key_runs_active(), NOW, rid)
  return true
end

-- log_events appends the consecutive run events first, first+1, ... (vals:
-- one "<type>\n<data>" each) to the run log lk as one stream entry: id
-- "<last>-<first>", field "<k>" the event first+k. Events the log already
-- holds (a relay that took over re-sends them) are skipped, never stored
-- twice; the log keeps the entries holding its newest max events (MINID).
-- It returns how many it stored.
local function log_events(lk, max, first, vals)
  local n = #vals
  local last = first + n - 1
  local from = first
  -- Only an entry overlapping this batch has an id >= first: normally none,
  -- so this reads nothing.
  local top = redis.call('XREVRANGE', lk, '+', string.format('%.0f', first), 'COUNT', 1)
  if #top > 0 then
    local stored = tonumber(string.match(top[1][1], '^(%d+)-'))
    if stored >= last then return 0 end
    from = stored + 1
  end
  -- A batch longer than the log keeps only its newest max events.
  local low = last - max + 1
  if low > from then from = low end
  if low < 0 then low = 0 end
  local args = {lk, 'MINID', '=', string.format('%.0f', low),
    string.format('%.0f', last) .. '-' .. string.format('%.0f', from)}
  for i = from - first + 1, n do
    args[#args + 1] = tostring(i - (from - first + 1))
    args[#args + 1] = vals[i]
  end
  redis.call('XADD', unpack(args))
  return last - from + 1
end
