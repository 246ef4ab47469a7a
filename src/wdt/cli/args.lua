-- The `wdt` command line: options, words, usage errors, number options, ARGS_JSON.
local output = require "wdt.cli.output"

local args = {}

-- Usage errors travel as a raised table, caught in cli.main.
local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end
args.UsageError = UsageError

function args.usage(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, UsageError), 0)
end
local usage = args.usage

function args.is_usage_error(e) return getmetatable(e) == UsageError end

-- A word given on the command line (a shop name) that can be sent: valid UTF-8.
function args.is_utf8(s)
  if utf8 and utf8.len then return utf8.len(s) ~= nil end   -- luacheck: ignore (5.3+ global)
  return require("wdt.sync.common").clean_message(s) == s
end

function args.usage_error(message) return setmetatable({ message = message }, UsageError) end

-- name -> takes a value?  Every option of every command; which command accepts which is
-- checked after parsing.
args.option_takes_value = {
  config = true, url = true, timeout = true, retries = true, help = false, version = false,
  ["page-size"] = true, ["page-no"] = true, all = false, total = false,
  shop = true, handler = true, batch = true, count = "number", ["dry-run"] = false,
  force = false, json = false, wait = true, ["lock-dir"] = true, ["no-lock"] = false,
  redis = true, ["rate-per-minute"] = true, ["rate-window"] = true, ["rate-wait"] = true,
  ["max-rows"] = true,
}

local global_options = { config = true, url = true, timeout = true, retries = true, help = true,
                         version = true, redis = true, ["rate-per-minute"] = true,
                         ["rate-window"] = true, ["rate-wait"] = true }

-- the run lock of the flows (sync; later push, scan)
local lock_options = { wait = true, ["lock-dir"] = true, ["no-lock"] = true }

local command_options = {
  call = { ["page-size"] = true, ["page-no"] = true, all = true, total = true, ["max-rows"] = true },
  ["sync logistics"] = { shop = true, handler = true, batch = true, ["page-size"] = true,
                         ["dry-run"] = true, json = true },
  ["sync stock"] = { handler = true, count = true, force = true, ["dry-run"] = true, json = true },
  sync = {},
}
args.command_options = command_options     -- commands in files of their own add theirs
-- A command that holds a run lock (sync; push and scan call this too) takes --wait,
-- --lock-dir and --no-lock; wdt.cli.config.lock_spec turns them into wdt.lock's options.
function args.add_lock_options(command)
  command_options[command] = command_options[command] or {}
  for name in pairs(lock_options) do command_options[command][name] = true end
end
args.add_lock_options("sync logistics")
args.add_lock_options("sync stock")

-- argv -> opts (name -> value or true), words (the rest, in order)
function args.parse(argv)
  local opts, words = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do words[#words + 1] = argv[j] end
      break
    elseif a == "-h" then
      opts.help = true
    elseif a == "-V" then
      opts.version = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local takes = args.option_takes_value[name]
      if takes == nil then usage("unknown option '--%s'", name) end
      if takes == "number" then      -- a flag, or a flag with the number that follows it
        if value == nil and argv[i + 1] and argv[i + 1]:match("^%d+$") then
          i = i + 1
          value = argv[i]
        end
        opts[name] = value or true
      elseif takes then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option '--%s' needs a value", name) end
        end
        opts[name] = value
      else
        if value ~= nil then usage("option '--%s' takes no value", name) end
        opts[name] = true
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not a:match("^%-%d") then
      usage("unknown option '%s'", a)
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return opts, words
end

function args.check_allowed(opts, command)
  local allowed = command_options[command] or {}
  for name in pairs(opts) do
    if not global_options[name] and not allowed[name] then
      usage("option '--%s' does not apply to 'wdt %s'", name, command)
    end
  end
end

function args.int_option(opts, name, min, max, default)
  local v = opts[name]
  if v == nil then return default end
  if v == true then usage("option '--%s' needs a value", name) end
  local n = tonumber(v)
  if not n or n % 1 ~= 0 or n < min or n > max then
    usage("option '--%s' wants a whole number from %d to %d, got '%s'", name, min, max, v)
  end
  return math.floor(n)
end

function args.number_option(opts, name, min)
  local v = opts[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n ~= n or n < min or n == math.huge then
    usage("option '--%s' wants a number >= %s, got '%s'", name, tostring(min), v)
  end
  return n
end

-- Load FILE.lua, which returns a function (a handler, a source): the function, or a usage
-- error naming `what`.
function args.load_function(path, what)
  local chunk, err = loadfile(path)
  if not chunk then usage("cannot load the %s: %s", what, output.one_line(err)) end
  local ok, fn = pcall(chunk)
  if not ok then usage("the %s file raised an error: %s", what, output.one_line(fn)) end
  if type(fn) ~= "function" then
    usage("the %s file %s must return a function (it returned %s)", what, path, type(fn))
  end
  return fn
end

-- ARGS_JSON -> the positional arguments and their number: an array of arguments, or one
-- object taken as the only argument.
function args.decode_args(text)
  local wdt = require "wdt"
  local v, err = wdt.json.safe.decode(text)
  if v == nil and err then usage("ARGS_JSON is not valid JSON: %s", output.one_line(err)) end
  if type(v) ~= "table" then usage("ARGS_JSON must be a JSON array of arguments (or one object)") end
  local core = require "wdt.core"
  local is_array = getmetatable(v) == core.array_mt or v[1] ~= nil
  if is_array then return v, #v end
  return { v }, 1
end

return args
