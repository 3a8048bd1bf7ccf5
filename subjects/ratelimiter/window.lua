#!lua
-- Sliding-window log rate check, atomic in Redis, timed by Redis server time.
--
-- The shebang (no flags) declares a script that may write: Redis refuses it as a
-- whole while it is out of memory (maxmemory reached, noeviction) or paused for
-- writes. Without it a legacy script whose first write is a no-op ZREMRANGEBYSCORE
-- would slip past the OOM check and grow memory beyond maxmemory; with it the
-- limiter fails closed (the node answers 503) instead.
--
-- KEYS[1]  window ZSET of one key (member = unique request id, score = microseconds)
-- KEYS[2]  limits hash (policy key -> limit)
-- ARGV[1]  policy key (field in the limits hash)
-- ARGV[2]  window length in microseconds
-- ARGV[3]  cost of this request (>= 1)
-- ARGV[4]  declared policy limit, used (and stored) when the hash has none; -1 = not a policy key
-- ARGV[5]  unique member prefix for this request (members are <prefix>:1..cost)
--
-- Returns {allowed 1|0, count in the log after the call, limit (-1 = unknown key),
--          TIME seconds, TIME microseconds}.
--
-- Entries older than the window are pruned; the request is allowed iff
-- count + cost <= limit, in which case `cost` entries scored "now" are added.
-- Entries scored in the future (which no correct writer produces) are never
-- pruned here and keep counting: that is what `prune` is for. The key lives
-- until its newest entry has left the window.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local limit = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if limit == nil then
  limit = tonumber(ARGV[4])
  if limit < 0 then
    return {0, 0, -1, t[1], t[2]}
  end
  redis.call('HSETNX', KEYS[2], ARGV[1], limit)
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count + cost <= limit then
  allowed = 1
  local score = string.format('%.0f', now)
  for i = 1, cost do
    redis.call('ZADD', KEYS[1], score, ARGV[5] .. ':' .. i)
  end
  count = count + cost
end

local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then
  local ttl_ms = math.floor((tonumber(newest[2]) - now + window) / 1000) + 1
  if ttl_ms < 1 then ttl_ms = 1 end
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
end
return {allowed, count, limit, t[1], t[2]}
