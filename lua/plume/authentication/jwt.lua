-- JSON Web Tokens signed with HS256 (RFC 7519), made and checked the way Node's
-- jsonwebtoken does it for Feathers (spec/feathers.md §9.2): the same claims, the same
-- checks in the same order, the same messages. Verification pins HS256 whatever the token
-- says: "alg": "none", RS256 and every other algorithm are refused (algorithm confusion).
--
--   local jwt = require "plume.authentication.jwt"
--   local token = jwt.sign({ role = "admin" }, secret, { expiresIn = "1d", subject = "8" })
--   local payload, err = jwt.verify(token, secret, { audience = "https://yourdomain.com" })
--   -- err = { name = "TokenExpiredError", message = "jwt expired",
--   --         expiredAt = "2025-01-01T00:00:00.000Z" }
--
-- Signing options (jsonwebtoken's names): algorithm ("HS256" only), header (merged into
-- the JOSE header), expiresIn, notBefore (seconds, or "1d", "2h", "30m", "10s", "1.5 days"
-- ...), audience, issuer, subject, jwtid, keyid, noTimestamp. Verifying options:
-- algorithms / algorithm (only HS256 can pass), audience (a string or a list), issuer (a
-- string or a list), subject, jwtid, maxAge, clockTimestamp, clockTolerance,
-- ignoreExpiration, ignoreNotBefore, complete, and header.typ: when given, the token's
-- "typ" must equal it (Plume checks it; jsonwebtoken does not, reliability.md §4.5 #37).

local core = require "plume.core"
local json = require "plume.json"
local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local error = error
local pcall = pcall
local tonumber = tonumber
local os_date = os.date
local os_time = os.time
local math_floor = math.floor
local math_type = math.type
local string_lower = string.lower
local string_format = string.format
local table_concat = table.concat
local crypto = core.crypto
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local to_string = util.to_string
local contains = util.contains
local json_object = json.object
local json_encode = json.encode
local json_decode = json.decode


local _M = {}


-- The one algorithm Plume signs and accepts.
_M.ALGORITHM = "HS256"

-- Longer tokens are refused as malformed before anything is decoded.
_M.MAX_LENGTH = 8192


-- Seconds since the epoch; specs may replace it.
function _M.now()
  return os_time()
end


-- {{ Time spans ("1d", "2h", 90) ---------------------------------------------------------


local SECOND = 1000
local MINUTE = 60 * SECOND
local HOUR = 60 * MINUTE
local DAY = 24 * HOUR

local UNITS = {
  years = DAY * 365.25, year = DAY * 365.25, yrs = DAY * 365.25, yr = DAY * 365.25,
  y = DAY * 365.25,
  weeks = DAY * 7, week = DAY * 7, w = DAY * 7,
  days = DAY, day = DAY, d = DAY,
  hours = HOUR, hour = HOUR, hrs = HOUR, hr = HOUR, h = HOUR,
  minutes = MINUTE, minute = MINUTE, mins = MINUTE, min = MINUTE, m = MINUTE,
  seconds = SECOND, second = SECOND, secs = SECOND, sec = SECOND, s = SECOND,
  milliseconds = 1, millisecond = 1, msecs = 1, msec = 1, ms = 1,
}


-- Milliseconds of a time span written as the `ms` package reads it ("2h", "1.5 days",
-- "100" = 100 ms); nil when it is not one.
function _M.ms(text)
  if type(text) ~= "string" or #text == 0 or #text > 100 then
    return nil
  end

  local value, unit = text:match("^(%-?%d*%.?%d+) *(%a*)$")
  if value == nil then
    return nil
  end

  local factor = 1
  if unit ~= "" then
    factor = UNITS[string_lower(unit)]
    if factor == nil then
      return nil
    end
  end

  return tonumber(value) * factor
end


-- The claim time `span` after `base` (seconds): an integer count of seconds or an ms()
-- string. nil when span is neither (jsonwebtoken's timespan()).
function _M.timespan(span, base)
  if type(span) == "string" then
    local milliseconds = _M.ms(span)
    if milliseconds == nil then
      return nil
    end

    return math_floor(base + milliseconds / 1000)
  end

  if type(span) == "number" and math_type(span) == "integer" then
    return base + span
  end

  if type(span) == "number" and span == math_floor(span) then
    return math_floor(base + span)
  end

  return nil
end


-- }} Signing ------------------------------------------------------------------------------


local SPAN_OPTIONS = {
  { "notBefore", "nbf" },
  { "expiresIn", "exp" },
}


local CLAIM_OPTIONS = {
  { "audience", "aud" },
  { "issuer", "iss" },
  { "subject", "sub" },
  { "jwtid", "jti" },
}


local function copy_object(t)
  local copy = json_object({})
  if type(t) == "table" then
    for k, v in pairs(t) do
      copy[k] = v
    end
  end

  return copy
end


-- Signs payload (a table of claims) with secret; raises on invalid arguments with
-- jsonwebtoken's messages. Returns the compact token.
function _M.sign(payload, secret, options)
  options = options or {}
  if type(payload) ~= "table" or is_array(payload) then
    error("Expected \"payload\" to be a plain object.", 2)
  end

  if type(secret) ~= "string" or secret == "" then
    error("secretOrPrivateKey must have a value", 2)
  end

  local algorithm = options.algorithm
  if algorithm ~= nil and algorithm ~= _M.ALGORITHM then
    error("\"algorithm\" must be HS256, the only algorithm Plume supports", 2)
  end

  local header = json_object({ typ = "JWT" })
  if type(options.header) == "table" then
    for k, v in pairs(options.header) do
      header[k] = v
    end
  end

  header.alg = _M.ALGORITHM
  if options.keyid ~= nil then
    header.kid = options.keyid
  end

  local claims = copy_object(payload)
  local timestamp = type(payload.iat) == "number" and payload.iat or _M.now()
  if options.noTimestamp then
    claims.iat = nil
  else
    claims.iat = timestamp
  end

  for _, spec in ipairs(SPAN_OPTIONS) do
    local name, claim = spec[1], spec[2]
    local span = options[name]
    if span ~= nil then
      if payload[claim] ~= nil then
        error("Bad \"options." .. name .. "\" option the payload already has an \""
              .. claim .. "\" property.", 2)
      end

      local at = _M.timespan(span, timestamp)
      if at == nil then
        error("\"" .. name .. "\" should be a number of seconds or string representing a "
              .. "timespan", 2)
      end

      claims[claim] = at
    end
  end

  for _, spec in ipairs(CLAIM_OPTIONS) do
    local name, claim = spec[1], spec[2]
    local value = options[name]
    if value ~= nil then
      if payload[claim] ~= nil then
        error("Bad \"options." .. name .. "\" option. The payload already has an \""
              .. claim .. "\" property.", 2)
      end

      claims[claim] = value
    end
  end

  return crypto.jws_sign(json_encode(header), json_encode(claims), secret)
end


-- }} Verifying ----------------------------------------------------------------------------


-- JavaScript's new Date(seconds * 1000).toJSON(); null when out of range.
local function iso_date(seconds)
  local ms = math_floor(seconds * 1000)
  local whole = math_floor(ms / 1000)
  local ok, text = pcall(os_date, "!%Y-%m-%dT%H:%M:%S", whole)
  if not ok or type(text) ~= "string" then
    return json.null
  end

  return text .. string_format(".%03dZ", ms - whole * 1000)
end


local function fail(message, name, extra)
  local err = { name = name or "JsonWebTokenError", message = message }
  if extra then
    for k, v in pairs(extra) do
      err[k] = v
    end
  end

  return nil, err
end


local function list_of(value)
  if type(value) == "table" then
    return value
  end

  return { value }
end


-- The algorithms a verification accepts: HS256 unless the options leave it out.
local function accepts_hs256(options)
  local allowed = options.algorithms
  if allowed == nil and options.algorithm ~= nil then
    allowed = list_of(options.algorithm)
  end

  return allowed == nil or contains(list_of(allowed), _M.ALGORITHM)
end


local function decode_object(text)
  local ok, value = pcall(json_decode, text)
  if not ok or type(value) ~= "table" or is_array(value) then
    return nil
  end

  return value
end


local function check_claims(payload, options, clock)
  local tolerance = tonumber(options.clockTolerance) or 0

  local nbf = payload.nbf
  if nbf ~= nil and not options.ignoreNotBefore then
    if type(nbf) ~= "number" then
      return fail("invalid nbf value")
    end

    if nbf > clock + tolerance then
      return fail("jwt not active", "NotBeforeError", { date = iso_date(nbf) })
    end
  end

  local exp = payload.exp
  if exp ~= nil and not options.ignoreExpiration then
    if type(exp) ~= "number" then
      return fail("invalid exp value")
    end

    if clock >= exp + tolerance then
      return fail("jwt expired", "TokenExpiredError", { expiredAt = iso_date(exp) })
    end
  end

  if truthy(options.audience) then
    local audiences = list_of(options.audience)
    local targets = is_array(payload.aud) and payload.aud or { payload.aud }
    local match = false
    for i = 1, #targets do
      if type(targets[i]) == "string" and contains(audiences, targets[i]) then
        match = true
        break
      end
    end

    if not match then
      local names = {}
      for i = 1, #audiences do
        names[i] = to_string(audiences[i])
      end

      return fail("jwt audience invalid. expected: " .. table_concat(names, " or "))
    end
  end

  local issuer = options.issuer
  if truthy(issuer) then
    local valid
    if type(issuer) == "table" then
      valid = contains(issuer, payload.iss)
    else
      valid = payload.iss == issuer
    end

    if not valid then
      return fail("jwt issuer invalid. expected: " .. to_string(issuer))
    end
  end

  if truthy(options.subject) and payload.sub ~= options.subject then
    return fail("jwt subject invalid. expected: " .. to_string(options.subject))
  end

  if truthy(options.jwtid) and payload.jti ~= options.jwtid then
    return fail("jwt jwtid invalid. expected: " .. to_string(options.jwtid))
  end

  if truthy(options.maxAge) then
    if type(payload.iat) ~= "number" then
      return fail("iat required when maxAge is specified")
    end

    local latest = _M.timespan(options.maxAge, payload.iat)
    if latest == nil then
      return fail("\"maxAge\" should be a number of seconds or string representing a "
                  .. "timespan eg: \"1d\", \"20h\", 60")
    end

    if clock >= latest + tolerance then
      return fail("maxAge exceeded", "TokenExpiredError", { expiredAt = iso_date(latest) })
    end
  end

  return payload
end


-- Verifies token with secret. Returns the payload (or { header, payload, signature } with
-- options.complete), or nil and an error table { name, message [, expiredAt | date] }
-- whose fields are jsonwebtoken's.
function _M.verify(token, secret, options)
  options = options or {}
  local clock = tonumber(options.clockTimestamp) or _M.now()

  if token == nil or is_null(token) or token == "" then
    return fail("jwt must be provided")
  end

  if type(token) ~= "string" then
    return fail("jwt must be a string")
  end

  if #token > _M.MAX_LENGTH then
    return fail("jwt malformed")
  end

  if type(secret) ~= "string" or secret == "" then
    return fail("secret or public key must be provided")
  end

  local header_text, payload_text, signed, valid = crypto.jws_decode(token, secret)
  if header_text == nil then
    return fail(payload_text)
  end

  local header = decode_object(header_text)
  if header == nil then
    return fail("invalid token")
  end

  if not signed then
    return fail("jwt signature is required")
  end

  if header.alg ~= _M.ALGORITHM or not accepts_hs256(options) then
    return fail("invalid algorithm")
  end

  if not valid then
    return fail("invalid signature")
  end

  local typ = type(options.header) == "table" and options.header.typ or nil
  if typ ~= nil and header.typ ~= typ then
    return fail("jwt type invalid. expected: " .. to_string(typ))
  end

  local payload = decode_object(payload_text)
  if payload == nil then
    return fail("invalid token")
  end

  local checked, err = check_claims(payload, options, clock)
  if checked == nil then
    return nil, err
  end

  if options.complete then
    return {
      header = header,
      payload = payload,
      signature = token:match("[^.]*$"),
    }
  end

  return payload
end


-- The payload of token without any verification (jsonwebtoken's decode), or with
-- options.complete { header, payload, signature }; nil when it cannot be decoded.
function _M.decode(token, options)
  if type(token) ~= "string" or #token > _M.MAX_LENGTH then
    return nil
  end

  local header_text, payload_text = crypto.jws_decode(token, "")
  if header_text == nil then
    return nil
  end

  local header = decode_object(header_text)
  local payload = decode_object(payload_text)
  if header == nil or payload == nil then
    return nil
  end

  if options and options.complete then
    return { header = header, payload = payload, signature = token:match("[^.]*$") }
  end

  return payload
end


return _M
