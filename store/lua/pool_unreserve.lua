-- ReleasePoolSlot. KEYS[1] pool:reserved. ARGV: prefix, now, reservation.
redis.call('ZREM', KEYS[1], ARGV[3])
return 1
