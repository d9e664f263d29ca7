-- ReleasePoolSlot. ARGV: prefix, now, reservation.
redis.call('ZREM', P .. 'pool:reserved', ARGV[3])
return 1
