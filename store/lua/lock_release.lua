-- ReleaseProvisionLock. KEYS[1] lock. ARGV: prefix, now, holder.
if redis.call('HGET', KEYS[1], 'holder') == ARGV[3] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
