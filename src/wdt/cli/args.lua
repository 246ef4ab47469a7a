-- The `wdt` command line: flags declared as help lines, parsing against a command's flags,
-- usage errors, number options, --shop, JSON words (ARGS_JSON, FILTER_JSON).
--
-- A flag is declared as { "--name ARG", "what it does" } (ARG present: it takes a value,
-- as --name ARG or --name=ARG) or { "-h, --help", "..." } (a one-letter alias). The first
-- string is also what the help prints: what is parsed and what is documented are one.
local output = require "wdt.cli.output"

local args = {}

-- Usage errors travel as a raised table, caught in cli.main.
local UsageError = { __tostring = function(e) return e.message end }

function args.usage_error(message) return setmetatable({ message = message }, UsageError) end
function args.is_usage_error(e) return getmetatable(e) == UsageError end
function args.usage(fmt, ...) error(args.usage_error(fmt:format(...)), 0) end
local usage = args.usage

-- A word given on the command line (a shop name) that can be sent: valid UTF-8.
local function is_utf8(s)
  if utf8 and utf8.len then return utf8.len(s) ~= nil end   -- luacheck: ignore (5.3+ global)
  return require("wdt.sync.common").clean_message(s) == s
end

-- `--shop SHOP` of the flows that take one: given, and a word that can be sent.
function args.shop(opts)
  if not opts.shop or opts.shop == "" then usage("'--shop SHOP' is required") end
  if not is_utf8(opts.shop) then usage("'--shop' is not valid UTF-8") end
  return opts.shop
end

-- The options of every command (cli.config reads them).
args.GLOBAL_FLAGS = {
  { "--config FILE", "read url/sid/key/secret from FILE (JSON object, or KEY=VALUE lines)" },
  { "--url URL", "the API endpoint, or 'production' or 'emulator' (default: WDT_URL;\n"
                  .. "one of them is required)" },
  { "--timeout SECONDS", "per-request timeout (default 30)" },
  { "--retries N", "retries of a failed request (default 3)" },
  { "--rate-per-minute N", "pace the calls under the seller's limit of N calls per window" },
  { "--rate-window S", "the rate limit's window in seconds (default 60)" },
  { "--rate-wait S", "how long one request may wait for the rate budget (default 600)" },
  { "--redis URL", "run locks and rate budget in Redis, for several hosts (WDT_REDIS)" },
  { "-h, --help", "show help (also 'wdt COMMAND --help')" },
  { "-V, --version", "show the version" },
}

-- The run lock of a flow's command (sync, push, scan), for its own flag list;
-- wdt.cli.config.lock_spec turns them into wdt.lock's options.
-- A flow's calls in flight (wdt.flow's `concurrency`): the flag and its value.
args.CONCURRENCY_FLAG = { "--concurrency N", "calls in flight at once, 1..64 (default 4; the seller's rate\n"
                                             .. "budget and limit of calls at once still apply)" }
function args.concurrency(opts)
  return args.int_option(opts, "concurrency", 1, require("wdt.flow").MAX_CONCURRENCY, nil)
end

args.LOCK_FLAGS = {
  { "--wait SECONDS", "wait this long for another run that holds the run lock to end;\n"
                      .. "by default exit 75 at once" },
  { "--lock-dir DIR", "folder of the run locks (default $WDT_LOCK_DIR, else\n"
                      .. "/tmp/wdt-locks-UID); with --redis the lock is in Redis" },
  { "--no-lock", "take no run lock (you keep runs apart yourself)" },
}

-- The lists given, one after the other, in a new list.
function args.flags(...)
  local out = {}
  for i = 1, select("#", ...) do
    for _, f in ipairs((select(i, ...))) do out[#out + 1] = f end
  end
  return out
end

-- flag lists -> { name = takes_value }, { letter = name }. The same name declared twice
-- with a different arity is a mistake in the declarations: raised at once.
function args.flag_index(...)
  local takes, short = {}, {}
  for _, f in ipairs(args.flags(...)) do
    local letter, name, rest = f[1]:match("^%-(%a), %-%-([%w%-]+)(.*)$")
    if not letter then name, rest = f[1]:match("^%-%-([%w%-]+)(.*)$") end
    local value = rest:match("%S") ~= nil
    assert(takes[name] == nil or takes[name] == value, "--" .. name .. " declared twice, differently")
    takes[name] = value
    if letter then short[letter] = name end
  end
  return takes, short
end

-- One option at argv[i] into opts, by the index `takes`: the index of the next argument.
-- An option `takes` does not know: unknown(name), which raises.
local function take_option(argv, i, opts, takes, short, unknown)
  local a = argv[i]
  if a:sub(1, 2) ~= "--" then
    local name = short[a:sub(2)]
    if not name then usage("unknown option '%s'", a) end
    opts[name] = true
    return i + 1
  end
  local name, value = a:match("^%-%-([^=]+)=(.*)$")
  name = name or a:sub(3)
  local value_wanted = takes[name]
  if value_wanted == nil then unknown(name) end
  if value_wanted then
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
  return i + 1
end

local function is_option(a) return a:sub(1, 1) == "-" and #a > 1 and not a:match("^%-%d") end

-- argv from index `from` -> opts (name -> value or true), words (the rest, in order),
-- by the flag index of args.flag_index; unknown(name) raises for an option it lacks.
-- `first_word`: stop at the first word (the command's), -> opts, words, its index.
function args.parse(argv, from, takes, short, unknown, first_word)
  local opts, words = {}, {}
  local i = from
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      if first_word then usage("'--' goes after the COMMAND") end
      for j = i + 1, #argv do words[#words + 1] = argv[j] end
      break
    elseif is_option(a) then
      i = take_option(argv, i, opts, takes, short, unknown)
    else
      words[#words + 1] = a
      if first_word then return opts, words, i end
      i = i + 1
    end
  end
  return opts, words, nil
end

-- Every option given is one of `flags` or a global one.
function args.check_allowed(opts, takes, command)
  for name in pairs(opts) do
    if takes[name] == nil then
      usage("option '--%s' does not apply to 'wdt %s'", name, command)
    end
  end
end

function args.int_option(opts, name, min, max, default)
  local v = opts[name]
  if v == nil then return default end
  local n = tonumber(v)
  if not n or not require("wdt.check").is_integer(n) or n < min or n > max then
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

-- The words METHOD [JSON] of `wdt call` and `wdt scan` (`what` names the JSON) -> method,
-- the JSON text or nil; or a usage error.
function args.method_words(words, command, what)
  local method = words[1]
  if not method then usage("'wdt %s' needs a METHOD", command) end
  if #words > 2 then usage("'wdt %s' takes METHOD and at most one %s", command, what) end
  if not require("wdt.check").is_method(method) then usage("'%s' is not a method name", method) end
  return method, words[2]
end

-- A word quoted for sh: 'it'\''s'.
function args.shell_quote(v)
  return "'" .. tostring(v):gsub("'", "'\\''") .. "'"
end

-- Load FILE.lua, which returns a function (a handler, a source): that function, or a usage
-- error naming `what`. A table that module(t) accepts is taken too (`module_text` says
-- which, for the message).
function args.load_function(path, what, module, module_text)
  local chunk, err = loadfile(path)
  if not chunk then usage("cannot load the %s: %s", what, output.one_line(err)) end
  local ok, fn = pcall(chunk)
  if not ok then usage("the %s file raised an error: %s", what, output.one_line(fn)) end
  if type(fn) == "function" or (module and type(fn) == "table" and module(fn)) then return fn end
  usage("the %s file %s must return a function%s (it returned %s)", what, path,
        module and (", or " .. module_text) or "", type(fn))
end

-- A decoded JSON object: a table without the codec's array mark, and no list ([1,2]
-- decodes bare).
function args.is_json_object(v)
  return type(v) == "table" and getmetatable(v) == nil and v[1] == nil
end

-- JSON text of the command line (`what` names it: "ARGS_JSON") -> the value it holds.
function args.json(text, what)
  local v, err = require("wdt").json.safe.decode(text)
  if v == nil and err then usage("%s is not valid JSON: %s", what, output.one_line(err)) end
  return v
end

-- ARGS_JSON -> the positional arguments and their number: an array of arguments, or one
-- object taken as the only argument.
function args.decode_args(text)
  local v = args.json(text, "ARGS_JSON")
  if type(v) ~= "table" then usage("ARGS_JSON must be a JSON array of arguments (or one object)") end
  if args.is_json_object(v) then return { v }, 1 end
  return v, #v
end

return args
