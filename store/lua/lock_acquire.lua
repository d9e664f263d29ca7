-- AcquireProvisionLock, AcquireLease. KEYS[1] lock. ARGV: prefix, now, holder, ttl_ms.
if take_lease(KEYS[1], ARGV[3], tonumber(ARGV[4])) then return 1 end
return 0
