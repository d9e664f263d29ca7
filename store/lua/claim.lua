-- ClaimConversation. KEYS[1] conv. ARGV: prefix, now, cid, owner, tenant.
local r = claim_conv(KEYS[1], ARGV[4], ARGV[5])
if r == 'not_owner' then return {'not_owner', ''} end
return {r, encode(KEYS[1])}
