-- luacheck: std +busted
require "tests.lua.helper"
local core = require "plume.core"
local json = require "plume.json"
local jwt = require "plume.authentication.jwt"


local crypto = core.crypto
local ACCESS = '{"alg":"HS256","typ":"access"}'
local SECRET = "spec-secret"
local IAT = 1700000000

-- Feathers' jwtOptions for verification (algorithm normalised to algorithms).
local FEATHERS = {
  header = { typ = "access" },
  audience = "https://yourdomain.com",
  issuer = "feathers",
  algorithms = { "HS256" },
}

-- Made by Node's jsonwebtoken 9 as Feathers 5 makes them: sign({ iat = IAT }, SECRET,
-- { header = { typ = "access" }, audience, issuer, algorithm = "HS256", expiresIn = "1d",
-- subject = "8", jwtid = "6dec5623-…" }).
local NODE_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImFjY2VzcyJ9.eyJpYXQiOjE3MDAwMDAwMDAsImV4c"
  .. "CI6MTcwMDA4NjQwMCwiYXVkIjoiaHR0cHM6Ly95b3VyZG9tYWluLmNvbSIsImlzcyI6ImZlYXRoZXJzIiwic"
  .. "3ViIjoiOCIsImp0aSI6IjZkZWM1NjIzLWRkMDMtNDRlNC04OTA0LWZhMjg5YjM5ZjYwMSJ9.KWe_HKbVa5b_"
  .. "tb22FPni6kpugrF1J2pVYpykzf5qb54"

-- sign({ iat = IAT, a = { 1, { b = 2 } } }, SECRET, { expiresIn = "1.5h", notBefore = 60 }).
local NODE_SPANS = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MDAwMDAwMDAsImEiOlsxL"
  .. "HsiYiI6Mn1dLCJuYmYiOjE3MDAwMDAwNjAsImV4cCI6MTcwMDAwNTQwMH0.ezSzu7oZZNIxp6jLwiQWTrFIuO"
  .. "oMTdnb0JX7YXtbvXk"


local function b64(s)
  return crypto.base64url_encode(s)
end


-- A token with the given header and payload texts, signed with HMAC-SHA256 under key
-- (whatever the header says), or with the given signature text.
local function forge(header, payload, key, signature)
  local input = b64(header) .. "." .. b64(payload)
  if signature == nil then
    signature = b64(crypto.hmac_sha256(key or SECRET, input))
  end

  return input .. "." .. signature
end


local function options(extra)
  local o = {}
  for k, v in pairs(FEATHERS) do
    o[k] = v
  end

  for k, v in pairs(extra or {}) do
    o[k] = v
  end

  return o
end


local function verify_error(token, opts, secret)
  local payload, err = jwt.verify(token, secret or SECRET, opts or options({
    clockTimestamp = IAT + 1 }))
  assert.is_nil(payload)
  return err
end


describe("plume.authentication.jwt", function()
  describe("verify", function()
    it("accepts a token Node's jsonwebtoken made for Feathers", function()
      local payload = assert(jwt.verify(NODE_TOKEN, SECRET, options({
        clockTimestamp = IAT + 1 })))
      assert.same({
        iat = IAT, exp = IAT + 86400, aud = "https://yourdomain.com", iss = "feathers",
        sub = "8", jti = "6dec5623-dd03-44e4-8904-fa289b39f601",
      }, payload)
      local complete = jwt.verify(NODE_TOKEN, SECRET, options({ clockTimestamp = IAT,
                                                                 complete = true }))
      assert.same({ alg = "HS256", typ = "access" }, complete.header)
      assert.equal("KWe_HKbVa5b_tb22FPni6kpugrF1J2pVYpykzf5qb54", complete.signature)
    end)

    it("refuses an expired token as jsonwebtoken does", function()
      local err = verify_error(NODE_TOKEN, options({ clockTimestamp = IAT + 86400 }))
      assert.same({ name = "TokenExpiredError", message = "jwt expired",
                    expiredAt = "2023-11-15T22:13:20.000Z" }, err)
      assert.truthy(jwt.verify(NODE_TOKEN, SECRET, options({ clockTimestamp = IAT + 86400,
                                                             clockTolerance = 1 })))
      assert.truthy(jwt.verify(NODE_TOKEN, SECRET, options({ clockTimestamp = IAT + 99999,
                                                             ignoreExpiration = true })))
      assert.equal("invalid exp value", verify_error(forge(ACCESS, '{"exp":"soon"}')).message)
    end)

    it("refuses a token that is not yet valid", function()
      local err = verify_error(NODE_SPANS, { clockTimestamp = IAT })
      assert.same({ name = "NotBeforeError", message = "jwt not active",
                    date = "2023-11-14T22:14:20.000Z" }, err)
      local payload = assert(jwt.verify(NODE_SPANS, SECRET, { clockTimestamp = IAT + 60 }))
      assert.equal(IAT + 5400, payload.exp)
      assert.truthy(jwt.verify(NODE_SPANS, SECRET, { clockTimestamp = IAT,
                                                     ignoreNotBefore = true }))
      assert.truthy(jwt.verify(NODE_SPANS, SECRET, { clockTimestamp = IAT,
                                                     clockTolerance = 60 }))
      assert.equal("invalid nbf value", verify_error(forge(ACCESS, '{"nbf":true}')).message)
    end)

    it("pins HS256: no algorithm confusion", function()
      local payload = '{"sub":"8","aud":"https://yourdomain.com","iss":"feathers"}'
      local cases = {
        -- alg none, without and with a signature
        { forge('{"alg":"none","typ":"access"}', payload, nil, ""),
          "jwt signature is required" },
        { forge('{"alg":"none","typ":"access"}', payload), "invalid algorithm" },
        -- RS256 header, HMAC made with the secret (the classic public-key confusion)
        { forge('{"alg":"RS256","typ":"access"}', payload), "invalid algorithm" },
        { forge('{"alg":"ES256","typ":"access"}', payload), "invalid algorithm" },
        { forge('{"alg":"HS512","typ":"access"}', payload), "invalid algorithm" },
        { forge('{"alg":"hs256","typ":"access"}', payload), "invalid algorithm" },
        { forge('{"alg":["HS256"],"typ":"access"}', payload), "invalid algorithm" },
        { forge('{"typ":"access"}', payload), "invalid algorithm" },
      }
      for _, case in ipairs(cases) do
        local err = verify_error(case[1])
        assert.same({ name = "JsonWebTokenError", message = case[2] }, err)
      end

      -- The same token passes with alg HS256, but not when HS256 is not allowed.
      local good = forge('{"alg":"HS256","typ":"access"}', payload)
      assert.truthy(jwt.verify(good, SECRET, options({ clockTimestamp = IAT })))
      assert.equal("invalid algorithm", verify_error(good, options({
        algorithms = { "RS256" }, clockTimestamp = IAT })).message)
      assert.equal("invalid algorithm", verify_error(good, { algorithm = "none" }).message)
      assert.truthy(jwt.verify(good, SECRET, { algorithm = "HS256" }))
    end)

    it("refuses tampered tokens and other secrets", function()
      assert.equal("invalid signature", verify_error(NODE_TOKEN, nil, "other").message)
      local header, body, signature = NODE_TOKEN:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      local forged_body = b64('{"iat":1700000000,"exp":1900000000,"aud":'
                              .. '"https://yourdomain.com","iss":"feathers","sub":"1"}')
      assert.equal("invalid signature",
                   verify_error(header .. "." .. forged_body .. "." .. signature).message)
      -- Same signature bytes, different text in the last character's unused bits.
      assert.equal("invalid signature", verify_error(header .. "." .. body .. "."
                                                     .. signature:sub(1, -2) .. "5").message)
      assert.equal("invalid signature", verify_error(header .. "." .. body .. "."
                                                     .. signature:sub(2)).message)
    end)

    it("gives jsonwebtoken's messages for garbage", function()
      local cases = {
        { nil, "jwt must be provided" },
        { "", "jwt must be provided" },
        { json.null, "jwt must be provided" },
        { 12, "jwt must be a string" },
        { { "x" }, "jwt must be a string" },
        { "abc", "jwt malformed" },
        { "a.b", "jwt malformed" },
        { "a.b.c.d", "jwt malformed" },
        { "a.b.c", "invalid token" },
        { "eyJhbGciOiJIUzI1NiJ9..c", "invalid token" },
        { "e$J.eyJ9.c", "invalid token" },
        { NODE_TOKEN:sub(1, 100), "jwt malformed" },
        { b64("not json") .. "." .. b64("{}") .. ".c", "invalid token" },
        { b64("[1]") .. "." .. b64("{}") .. ".c", "invalid token" },
        { b64('"HS256"') .. "." .. b64("{}") .. ".c", "invalid token" },
        { forge('{"alg":"HS256"}', "[1,2]"), "invalid token" },
        { forge('{"alg":"HS256"}', "nope"), "invalid token" },
        { string.rep("a", 5000) .. "." .. string.rep("b", 5000) .. ".c", "jwt malformed" },
      }
      for i, case in ipairs(cases) do
        local payload, err = jwt.verify(case[1], SECRET, {})
        assert.is_nil(payload, "case " .. i)
        assert.same({ name = "JsonWebTokenError", message = case[2] }, err, "case " .. i)
      end

      assert.equal("secret or public key must be provided",
                   verify_error(NODE_TOKEN, {}, "").message)
    end)

    it("checks audience, issuer, subject, jwtid and type", function()
      local at = { clockTimestamp = IAT }
      local function with(extra)
        local o = options(at)
        for k, v in pairs(extra) do
          o[k] = v
        end

        return o
      end

      assert.equal("jwt audience invalid. expected: https://other.example",
                   verify_error(NODE_TOKEN, with({ audience = "https://other.example" }))
                     .message)
      assert.equal("jwt audience invalid. expected: a or b",
                   verify_error(NODE_TOKEN, with({ audience = { "a", "b" } })).message)
      assert.truthy(jwt.verify(NODE_TOKEN, SECRET, with({
        audience = { "a", "https://yourdomain.com" } })))
      local many = forge('{"alg":"HS256","typ":"access"}',
                         '{"aud":["x","https://yourdomain.com"],"iss":"feathers"}')
      assert.truthy(jwt.verify(many, SECRET, with({})))
      assert.equal("jwt issuer invalid. expected: plume",
                   verify_error(NODE_TOKEN, with({ issuer = "plume" })).message)
      assert.equal("jwt issuer invalid. expected: a,b",
                   verify_error(NODE_TOKEN, with({ issuer = { "a", "b" } })).message)
      assert.truthy(jwt.verify(NODE_TOKEN, SECRET, with({ issuer = { "a", "feathers" } })))
      assert.equal("jwt subject invalid. expected: 9",
                   verify_error(NODE_TOKEN, with({ subject = "9" })).message)
      assert.equal("jwt jwtid invalid. expected: x",
                   verify_error(NODE_TOKEN, with({ jwtid = "x" })).message)
      assert.equal("jwt type invalid. expected: refresh",
                   verify_error(NODE_TOKEN, with({ header = { typ = "refresh" } })).message)
      assert.equal("jwt type invalid. expected: access",
                   verify_error(NODE_SPANS, options({ clockTimestamp = IAT + 100 })).message)
    end)

    it("checks maxAge", function()
      assert.truthy(jwt.verify(NODE_TOKEN, SECRET, options({ clockTimestamp = IAT + 59,
                                                             maxAge = "1m" })))
      local err = verify_error(NODE_TOKEN, options({ clockTimestamp = IAT + 60, maxAge = 60 }))
      assert.same({ name = "TokenExpiredError", message = "maxAge exceeded",
                    expiredAt = "2023-11-14T22:14:20.000Z" }, err)
      assert.equal("iat required when maxAge is specified",
                   verify_error(forge('{"alg":"HS256"}', '{}'), { maxAge = 5 }).message)
    end)
  end)

  describe("sign", function()
    it("makes the claims jsonwebtoken makes", function()
      local token = jwt.sign({ iat = IAT, a = { 1, { b = 2 } } }, SECRET,
                             { expiresIn = "1.5h", notBefore = 60 })
      local mine = jwt.decode(token, { complete = true })
      local node = jwt.decode(NODE_SPANS, { complete = true })
      assert.same(node.header, mine.header)
      assert.same(node.payload, mine.payload)
      assert.truthy(jwt.verify(token, SECRET, { clockTimestamp = IAT + 60 }))
    end)

    it("signs with Feathers' options like Node does", function()
      local token = jwt.sign({ iat = IAT }, SECRET, {
        header = { typ = "access" }, audience = "https://yourdomain.com",
        issuer = "feathers", algorithm = "HS256", expiresIn = "1d", subject = "8",
        jwtid = "6dec5623-dd03-44e4-8904-fa289b39f601",
      })
      assert.equal(NODE_TOKEN:match("^[^.]+"), token:match("^[^.]+"))
      assert.same(jwt.decode(NODE_TOKEN), jwt.decode(token))
      assert.same(jwt.verify(NODE_TOKEN, SECRET, options({ clockTimestamp = IAT })),
                  jwt.verify(token, SECRET, options({ clockTimestamp = IAT })))
    end)

    it("stamps iat now unless told otherwise", function()
      local now = jwt.now
      jwt.now = function() return 1234 end
      local payload = jwt.decode(jwt.sign({}, SECRET, { expiresIn = 10 }))
      jwt.now = now
      assert.same({ iat = 1234, exp = 1244 }, payload)
      assert.same({ x = 1 }, jwt.decode(jwt.sign({ x = 1 }, SECRET, { noTimestamp = true })))
      assert.equal("k1", jwt.decode(jwt.sign({}, SECRET, { keyid = "k1" }),
                                    { complete = true }).header.kid)
    end)

    it("always writes alg HS256 and refuses other algorithms", function()
      local token = jwt.sign({}, SECRET, { header = { alg = "none", typ = "access" } })
      assert.equal("HS256", jwt.decode(token, { complete = true }).header.alg)
      assert.truthy(jwt.verify(token, SECRET, { header = { typ = "access" } }))
      assert.has_error(function() jwt.sign({}, SECRET, { algorithm = "RS256" }) end)
      assert.has_error(function() jwt.sign({}, SECRET, { algorithm = "none" }) end)
    end)

    it("refuses bad arguments with jsonwebtoken's messages", function()
      local function message(fn)
        local ok, err = pcall(fn)
        assert.is_false(ok)
        return (tostring(err):gsub("^[^:]*:%d+: ", ""))
      end

      assert.equal("secretOrPrivateKey must have a value",
                   message(function() jwt.sign({}, "") end))
      assert.equal("Expected \"payload\" to be a plain object.",
                   message(function() jwt.sign("x", SECRET) end))
      assert.equal("\"expiresIn\" should be a number of seconds or string representing a "
                   .. "timespan", message(function() jwt.sign({}, SECRET,
                                                             { expiresIn = "soon" }) end))
      assert.equal("\"expiresIn\" should be a number of seconds or string representing a "
                   .. "timespan", message(function() jwt.sign({}, SECRET,
                                                             { expiresIn = 1.5 }) end))
      assert.equal("Bad \"options.expiresIn\" option the payload already has an \"exp\" "
                   .. "property.", message(function() jwt.sign({ exp = 1 }, SECRET,
                                                              { expiresIn = 1 }) end))
      assert.equal("Bad \"options.subject\" option. The payload already has an \"sub\" "
                   .. "property.", message(function() jwt.sign({ sub = "1" }, SECRET,
                                                              { subject = "2" }) end))
    end)
  end)

  describe("time spans", function()
    it("reads what the ms package reads", function()
      local rows = {
        { "1d", 86400000 }, { "2h", 7200000 }, { "30m", 1800000 }, { "10s", 10000 },
        { "100", 100 }, { "1.5h", 5400000 }, { "2 days", 172800000 }, { "1y", 31557600000 },
        { "1w", 604800000 }, { ".5s", 500 }, { "-1h", -3600000 }, { "5 MINUTES", 300000 },
        { "3ms", 3 }, { "1 hr", 3600000 },
      }
      for _, row in ipairs(rows) do
        assert.equal(row[2], jwt.ms(row[1]), row[1])
      end

      for _, bad in ipairs({ "", "d", "1x", "1.", "1 d s", "one day", string.rep("1", 101) }) do
        assert.is_nil(jwt.ms(bad), bad)
      end

      assert.equal(IAT + 86400, jwt.timespan("1d", IAT))
      assert.equal(IAT + 90, jwt.timespan(90, IAT))
      assert.equal(IAT + 1, jwt.timespan("1500ms", IAT))
      assert.is_nil(jwt.timespan(1.5, IAT))
      assert.is_nil(jwt.timespan(true, IAT))
    end)
  end)

  describe("decode", function()
    it("reads a token without checking it", function()
      assert.same({ sub = "1" }, jwt.decode(forge('{"alg":"none"}', '{"sub":"1"}', nil, "")))
      assert.is_nil(jwt.decode("a.b"))
      assert.is_nil(jwt.decode(42))
      assert.is_nil(jwt.decode(forge('{"alg":"HS256"}', "[1]")))
    end)
  end)
end)
