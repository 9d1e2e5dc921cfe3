package limit

import "github.com/redis/go-redis/v9"

// The scripts keep every check-and-update atomic and to one round trip
// (EVALSHA, falling back to EVAL once per connection when the script cache
// is cold). Each touches a single key, so they also work on Redis Cluster.
//
// Times are integer microseconds since the Unix epoch (about 1.8e15, exactly
// representable in a Lua double). tostring would print such numbers in
// exponent form and lose digits, hence string.format("%.0f").

// rateScript is GCRA as in redis_rate (BSD-2, after rwz/redis-gcra) with
// the clock in microseconds, and a refund mode.
//
// KEYS[1] bucket
// ARGV[1] limit per minute (burst = limit)
// ARGV[2] n (allow: 0..limit; refund: any, positive gives back)
// ARGV[3] mode: "a" allow, "r" refund
// ARGV[4] now in µs, or "" to use the server's TIME (the default, so
//
//	replicas with skewed clocks share one clock)
//
// Returns {allowed, remaining, retry_after_us, reset_us}.
var rateScript = redis.NewScript(`
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local now
if ARGV[4] ~= "" then
  now = tonumber(ARGV[4])
else
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- at least 1 µs: limits above 60 million per minute act as 60 million
local emission = math.max(math.floor(60000000 / limit), 1)
local tat = tonumber(redis.call("GET", key) or "0")
if tat < now then tat = now end

if ARGV[3] == "r" then
  local new_tat = tat - emission * n
  if new_tat <= now then
    redis.call("DEL", key)
  else
    redis.call("SET", key, string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
  end
  return {1, 0, 0, 0}
end

local new_tat = tat + emission * n
local diff = now - (new_tat - emission * limit)
if diff < 0 then
  return {0, 0, -diff, tat - now}
end
if n > 0 then
  redis.call("SET", key, string.format("%.0f", new_tat), "PX", math.ceil((new_tat - now) / 1000))
end
return {1, math.floor(diff / emission), 0, new_tat - now}
`)

// acquireScript takes one concurrency slot.
//
// KEYS[1] counter; ARGV[1] max; ARGV[2] TTL in seconds (safety net for
// slots of a replica that died before releasing them).
// Returns 1 when taken, 0 when full.
var acquireScript = redis.NewScript(`
local c = redis.call("INCR", KEYS[1])
if c > tonumber(ARGV[1]) then
  redis.call("DECR", KEYS[1])
  return 0
end
redis.call("EXPIRE", KEYS[1], ARGV[2])
return 1
`)

// releaseScript gives a slot back without going below zero (the counter may
// have expired and restarted meanwhile).
var releaseScript = redis.NewScript(`
local c = redis.call("DECR", KEYS[1])
if c <= 0 then redis.call("DEL", KEYS[1]) end
return c
`)

// reserveScript checks and reserves budget atomically.
//
// KEYS[1] hash {spent, reserved} for one key and period
// ARGV[1] limit, ARGV[2] amount (nano-USD)
// ARGV[3] initial spent from the ledger, or "" when not read yet
// ARGV[4] expire-at in unix ms, or 0 for no fixed end
// ARGV[5] idle TTL in seconds, used when ARGV[4] is 0
//
// Returns {status, spent, reserved}: status 1 admitted, 0 exceeded, -1 the
// period is not initialised yet (call again with ARGV[3]). Initialising is
// HSETNX-like: of two replicas racing, the first value wins.
var reserveScript = redis.NewScript(`
local key = KEYS[1]
if redis.call("HEXISTS", key, "spent") == 0 then
  if ARGV[3] == "" then return {-1, 0, 0} end
  redis.call("HSETNX", key, "spent", ARGV[3])
end
local spent = tonumber(redis.call("HGET", key, "spent"))
local reserved = tonumber(redis.call("HGET", key, "reserved") or "0")
local limit = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
local ok
if amount <= 0 then
  ok = spent + reserved < limit
else
  ok = spent + reserved + amount <= limit
end
if not ok then return {0, spent, reserved} end
reserved = redis.call("HINCRBY", key, "reserved", amount)
if ARGV[4] ~= "0" then
  redis.call("PEXPIREAT", key, ARGV[4])
else
  redis.call("EXPIRE", key, ARGV[5])
end
return {1, spent, reserved}
`)

// settleScript swaps a reservation for the actual cost. A missing hash (the
// period expired) is left alone: the ledger holds the cost.
//
// KEYS[1] hash; ARGV[1] reserved amount; ARGV[2] actual cost.
var settleScript = redis.NewScript(`
local key = KEYS[1]
if redis.call("HEXISTS", key, "spent") == 0 then return 0 end
local r = redis.call("HINCRBY", key, "reserved", -tonumber(ARGV[1]))
if r < 0 then redis.call("HSET", key, "reserved", 0) end
redis.call("HINCRBY", key, "spent", ARGV[2])
return 1
`)
