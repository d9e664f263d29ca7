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
