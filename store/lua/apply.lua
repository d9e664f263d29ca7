-- ApplyTaskState and MarkStopped, for a batch of events applied in order
-- (one script call amortises the call's own cost over the batch; each
-- event keeps its own compare-and-set). KEYS[i] ws of event i.
-- ARGV: prefix, now, tombstone_ms, then five per event: wid, version,
--       last_status, kind (running|stopped|other), stopped_reason.
-- Reply: per event, in order: outcome, previous state, the workspace hash
-- as a flat array (HGETALL: cheaper than encoding JSON, which was half the
-- script's cost), the ended conversation as JSON ('' if none).
-- Compare-and-set on the event version; STOPPED is absorbing. An empty
-- version (the reconciler's MarkStopped: the runtime says the workspace is
-- gone) skips the comparison and records no version, so any later real
-- event of the task still compares against the last real one.
-- Versions are compared as decimal strings: Docker's are nanosecond
-- timestamps (~1.7e18), beyond the 2^53 a Lua number holds exactly.
local ttl = tonumber(ARGV[3])

-- newer reports whether a > b for non-negative integers written without
-- leading zeros (as Go's strconv writes them).
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- apply applies one event to the workspace hash wk.
local function apply(wk, wid, ver, status, kind, reason)
  local cur = redis.call('HMGET', wk, 'version', 'state')
  local prev = cur[2] or ''
  if ver ~= '' and cur[1] and not newer(ver, cur[1]) then return {'stale', prev, redis.call('HGETALL', wk), ''} end
  if prev == 'stopped' and kind ~= 'stopped' then return {'ignored', prev, redis.call('HGETALL', wk), ''} end
  if ver == '' and prev == 'stopped' then return {'stale', prev, redis.call('HGETALL', wk), ''} end

  if ver ~= '' then redis.call('HSET', wk, 'version', ver) end
  redis.call('HSET', wk, 'last_status', status, 'updated_at', NOW)
  if prev == '' then
    redis.call('HSET', wk, 'created_at', NOW)
    redis.call('ZADD', key_workspaces(), 'NX', NOW, wid)
  end

  local cj = ''
  if kind == 'running' then
    if prev == '' or prev == 'provisioning' then redis.call('HSET', wk, 'state', 'running', 'running_at', NOW) end
  elseif kind == 'stopped' then
    if reason ~= '' then redis.call('HSET', wk, 'stopped_reason', reason) end
    if prev ~= 'stopped' then
      redis.call('HSET', wk, 'state', 'stopped', 'stopped_at', NOW)
      redis.call('ZREM', key_workspaces(), wid)
      redis.call('ZREM', key_lastuse(), wid)
      if leave_pool(wid) then pool_changed() end
      redis.call('DEL', key_streams(wid))
      local cid = redis.call('HGET', wk, 'conversation') or ''
      if cid ~= '' then
        local ck = key_conv(cid)
        if (redis.call('HGET', ck, 'workspace') or '') == wid then
          if (redis.call('HGET', wk, 'releasing') or '') ~= '' then
            settle(cid, ck, wid, 'released', '')
          else
            settle(cid, ck, wid, 'lost', 'workspace stopped: ' .. reason)
          end
          cj = encode(ck)
        end
      end
    end
    -- Keep the record as a tombstone so late events stay stale.
    redis.call('PEXPIRE', wk, ttl)
  else
    if prev == '' then redis.call('HSET', wk, 'state', 'provisioning') end
  end
  return {'applied', prev, redis.call('HGETALL', wk), cj}
end

local out = {}
for i = 1, #KEYS do
  local a = 3 + (i - 1) * 5
  out[i] = apply(KEYS[i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5])
end
return out
