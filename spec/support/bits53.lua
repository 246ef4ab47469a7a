-- 32-bit operations for spec/support/signer.lua with Lua 5.3's operators (loaded only on
-- Lua 5.3 and later: the syntax is theirs).
return {
  band = function(a, b) return a & b end,
  bor = function(a, b) return a | b end,
  bxor = function(a, b) return a ~ b end,
  bnot = function(a) return ~a & 0xffffffff end,
  rotl = function(x, n) return ((x << n) | (x >> (32 - n))) & 0xffffffff end,
}
