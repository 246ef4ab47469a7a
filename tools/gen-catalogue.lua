-- gen-catalogue.lua: builds wdt's catalogue of the API (src/wdt/api/) from the vendor's pages.
--
-- The pages: repository cunsheng/wangdiantong-api-qjb (a Firecrawl copy of
-- open.wangdian.cn/qjb/open/apidoc), files Firecrawl/<method>.md and five guide pages. Made
-- with a bare git directory of that repository (the code index's `fetch` tool gave one):
--
--   lua5.4 tools/gen-catalogue.lua /work/.mirror/cunsheng+wangdiantong-api-qjb/repo
--
-- It writes src/wdt/api/index.lua, src/wdt/api/guide.lua and src/wdt/api/methods/*.lua (one
-- per method: plain data, `return { … }`), and prints what it could not read or had to
-- mend to stderr. Not run by the build or CI; run it by hand when the pages change and
-- review the diff. The data are facts read off the pages; no vendor code is copied.
-- The shape of an entry is written down at the top of src/wdt/api/init.lua.
local gitdir, outdir = arg[1], arg[2] or "src/wdt/api"
if not gitdir then
  io.stderr:write("usage: lua5.4 tools/gen-catalogue.lua GITDIR [OUTDIR]\n")
  os.exit(2)
end
package.path = "src/?.lua;src/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
local json = require("wdt").json

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function git(args)
  local p = assert(io.popen("git --git-dir=" .. shell_quote(gitdir) .. " " .. args))
  local out = p:read("a")
  p:close()
  return out
end

local warnings = {}
local function warn(method, msg) warnings[#warnings + 1] = method .. ": " .. msg end

-------------------------------------------------------------------------------------------
-- markdown bits

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- A cell's text: markdown escapes and emphasis off, links to their text, <br> to a space.
local function plain(s)
  s = s:gsub("%[([^%]]*)%]%([^%)]*%)", "%1")
  s = s:gsub("<br%s*/?>", " "):gsub("%*%*", ""):gsub("\\([%p])", "%1")
  s = s:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&amp;", "&")
  return trim((s:gsub("\194\160", " "):gsub("%s+", " ")))
end

local function cells(line)
  local out, cur, i = {}, {}, 2
  while i <= #line do
    local c = line:sub(i, i)
    if c == "\\" and line:sub(i + 1, i + 1) == "|" then
      cur[#cur + 1] = "|"; i = i + 2
    elseif c == "|" then
      out[#out + 1] = table.concat(cur); cur = {}; i = i + 1
    else
      cur[#cur + 1] = c; i = i + 1
    end
  end
  if #cur > 0 and trim(table.concat(cur)) ~= "" then out[#out + 1] = table.concat(cur) end
  return out
end

-- The code in an example cell: "`[{`<br>`"a"``:``1`<br>`}]`" or a ``` fence.
local function code_text(cell)
  cell = trim(cell)
  local fenced = cell:match("^```(.*)```$")
  local s
  if fenced then
    s = fenced:gsub("<br%s*/?>", "\n")
  else
    s = cell:gsub("<br%s*/?>", "\n"):gsub("`", "")
  end
  s = s:gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&quot;", '"'):gsub("&nbsp;", " "):gsub("&amp;", "&")
  s = s:gsub("\194\160", " ")   -- no-break spaces the page uses for indentation
  return trim(s)
end

-------------------------------------------------------------------------------------------
-- types

local function norm_type(raw)
  local t = raw:lower():gsub("%s", ""):gsub("\\", "")
  if t == "" then return nil end
  if t:find("^list<") or t:find("^<map") or t:find("%[%]$") then
    local inner = t:match("^list<(.*)>$") or t:match("^<(.*)>?$") or t:match("^(.*)%[%]$") or ""
    if inner:find("^string") then return "list", "string" end
    if inner:find("^long") or inner:find("^int") then return "list", "int" end
    return "list", "object"
  end
  if t:find("^map") then return "object" end
  if t:find("^pager") then return "pager" end
  if t:find("decimal") then return "decimal" end
  if t:find("^bool") then return "bool" end
  if t == "int" or t == "integer" or t == "long" or t == "short" or t == "byte" or t == "bytre" then
    return "int"
  end
  if t:find("^str") or t:find("^s[rt]+i?ng") or t == "varchar" or t:find("^date") or t == "timestamp" then
    return "string"
  end
  return nil
end

local REQUIRED_WORDS = { ["是"] = true, y = true, Y = true, ["必须"] = true, ["必填"] = true, ["true"] = true }

-- Allowed values of a code field, from its description: "1:普通,2:自流转", "0无退款 1申请退款",
-- "10: 待递交,<br>20: 已递交". Only when every number found starts a meaning.
local function parse_values(desc, ty)
  if ty ~= "int" then
    if ty == "bool" then
      desc = desc:gsub("<br%s*/?>", ";"):gsub("；", ";"):gsub("，", ","):gsub("：", ":")
      local f = desc:match("false%s*:%s*([^;,]+)")
      local t = desc:match("true%s*:%s*([^;,]+)")
      if f and t then return { { value = false, meaning = trim(f) }, { value = true, meaning = trim(t) } } end
    end
    return nil
  end
  local s = desc:gsub("<br%s*/?>", ","):gsub("\194\160", " "):gsub("\227\128\128", " "):gsub("：", ":")
  for _, sep in ipairs({ "，", "；", "。", "、", "（", "）", ";", "(", ")" }) do
    s = s:gsub(sep:gsub("%p", "%%%0"), ",")
  end
  s = s:gsub("%.(%d)", ",%1"):gsub("%s+(%-?%d)", ",%1")
  s = s:gsub("([\128-\255])(%d)", "%1,%2")   -- "0未付款1部分付款": a code right after a meaning
  s = s:gsub(":(%-?%d)", ",%1")                 -- "状态:1:编辑中", "40已推送:80:已结算"
  local vals, seen = {}, {}
  for token in (s .. ","):gmatch("([^,]*),") do
    local num, meaning = token:match("^%s*(%-?%d+)%s*[:：=]?%s*(.-)%s*$")
    local v = tonumber(num)
    -- a trailing "无则填…" / "默认为…" is the default's phrase, not part of this meaning
    for _, tail in ipairs({ "无则填", "不传默认", "默认为", "默认" }) do
      local at = meaning and meaning:find(tail, 1, true)
      if at and at > 1 then meaning = meaning:sub(1, at - 1):gsub("%s+$", "") end
    end
    if v and meaning ~= "" and not meaning:find("^%d") and not seen[v] then
      seen[v] = true
      vals[#vals + 1] = { value = v, meaning = meaning }
    end
  end
  if #vals < 2 then return nil end
  -- a default the page names outside its list ("不传默认为0", "无则填0") is allowed too
  for _, pat in ipairs({ "默认为?%s*(%-?%d+)", "无则填%s*(%-?%d+)" }) do
    local d = tonumber(desc:match(pat))
    if d and not seen[d] then
      seen[d] = true
      vals[#vals + 1] = { value = d, meaning = "默认" }
    end
  end
  return vals
end

-------------------------------------------------------------------------------------------
-- one page

local HEADS = {
  ["名称"] = "title", ["字段"] = "name", ["字段名"] = "name", ["类型"] = "type", ["字段类型"] = "type",
  ["型类"] = "type", ["长度"] = "length", ["必须"] = "required", ["是否必须"] = "required",
}

local function column_map(head)
  local map, seen_name = {}, false
  for i, c in ipairs(head) do
    local k = plain(c)
    local role = HEADS[k]
    if k:find("^描述") then role = "description" end
    if role == "name" and seen_name then role = nil end
    if role == "title" and k == "字段" then role = "title" end
    if role == "name" then seen_name = true end
    if role then map[role] = map[role] or i end
  end
  if head[1] and plain(head[1]) == "字段" and plain(head[2] or "") == "字段" then
    map.title, map.name = 1, 2
  end
  if not map.name then return nil end
  return map
end

local function read_row(map, row)
  local function get(role) return map[role] and row[map[role]] and plain(row[map[role]]) or "" end
  local name = get("name")
  if name == "" or name:find("^%-%-") or name:find("^:%-") then return nil end
  local raw_type = get("type")
  local ty, of = norm_type(raw_type)
  local node = { name = name, title = get("title"), type_on_page = raw_type, type = ty, of = of }
  local len = tonumber(get("length"):match("^(%d+)"))
  node.length = len
  local req = get("required")
  node.required = REQUIRED_WORDS[req] or false
  local desc = get("description")
  if map.description and row[map.description] then
    node.description = desc
    node.values = parse_values(row[map.description], ty)
  end
  return node
end

local function find_node(list, name, want_empty, loose)
  local queue = {}
  for _, n in ipairs(list) do queue[#queue + 1] = n end
  local i = 1
  while queue[i] do
    local n = queue[i]
    local same = n.name == name or (loose == "case" and n.name:lower() == name:lower())
      or (loose == "prefix" and n.name:sub(1, #name) == name)
      or (loose == "typename" and (n.type_on_page or ""):find("<" .. name .. ">", 1, true))
      or (loose == "squash" and n.name:lower():gsub("_", "") == name:lower():gsub("_", ""))
    if same and (n.type == "object" or n.type == "list" or n.type == "pager" or n.type == nil)
       and (not want_empty or not n.children) then
      return n
    end
    for _, c in ipairs(n.children or {}) do queue[#queue + 1] = c end
    i = i + 1
  end
end

local function parse_page(name, text)
  local e = { name = name, notes = {} }
  e.url = text:match('url:%s*"([^"]+)"')
  local lines = {}
  for l in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end

  local section, part = nil, nil   -- section: "1".."7"; part: "public" | "args" | "response"
  local heading                     -- the last bold name before a table
  local example_kind                -- "request" | "response" | "error"
  local public, args, response = {}, {}, {}
  local orphans = {}
  local i = 1
  while i <= #lines do
    local l = lines[i]
    local flat = l:gsub("[%*%s]", "")
    local sec = flat:match("^(%d)%.%D") or flat:match("^(%d)%.$")
    if (section == "5" or section == "6") and example_kind and l:find("^```") then
      local body = {}
      i = i + 1
      while lines[i] and not lines[i]:find("^```") do
        body[#body + 1] = lines[i]:gsub("\\$", "")
        i = i + 1
      end
      i = i + 1
      local code = trim(table.concat(body, "\n"):gsub("\194\160", " "))
      local key = example_kind
      if code ~= "" and not code:find("^<") and not e[key .. "_example"] then e[key .. "_example"] = code end
    elseif not l:find("^|") then
      if sec and not flat:find("^%d%.%d") then
        section, heading = sec, nil
        if sec == "4" then part = "response" end
        if sec == "5" then example_kind = "request" end
      end
      if flat:find("^3%.2") or flat:find("公共请求参数") then part = "public"; heading = nil end
      if flat:find("^3%.3") or flat:find("业务请求参数") then part = "args"; heading = nil; section = "3" end
      if flat == "响应参数" then section, part = "4", "response" end
      if flat:find("^6%.1") then example_kind = "response" end
      if flat:find("^6%.2") then example_kind = "error" end
      -- a table's heading: the field it describes, bold or not ("**rawTradeList**", "params")
      local h = plain(l):match("^([%a_][%w_]*)")
      if h and not l:find("^%s*[-!%[]") then heading = h end
      if not e.title then
        local flat_title = l:gsub("[%*%s#]", "")
        if flat_title:sub(1, #name) == name and #flat_title > #name then
          local t = flat_title:sub(#name + 1)
          local inner = t:match("^（(.*)）$") or t:match("^%((.*)%)$") or t:match("^（(.*)%)$")
            or t:match("^%((.*)）$")
          t = inner or t
          e.title = plain(t)
        end
      end
      i = i + 1
    elseif section == "1" then
      local c = cells(l)
      local txt = c[1] and plain(c[1]) or ""
      local label, value
      local num_end = select(2, txt:find("^1%.%d+"))
      local colon = num_end and (txt:find("：", 1, true) or txt:find(":", 1, true))
      if colon then
        label = txt:sub(num_end + 1, colon - 1)
        value = trim(txt:sub(colon + (txt:sub(colon, colon) == ":" and 1 or 3)))
      end
      if label then
        label = label:gsub("%s", "")
        if label:find("接口描") then e.description = value
        elseif label:find("适用版本") then e.version = value
        elseif label:find("增量获取") then e.incremental = value ~= "" and value or nil
        elseif label:find("时间跨度") then e.window_text = value ~= "" and value or nil
        elseif value ~= "" then e.notes[#e.notes + 1] = label .. "：" .. value end
        local dep = (c[1] or ""):match("接口已过时.-path=([%w%.]+)")
        if dep then e.deprecated = dep end
      end
      i = i + 1
    elseif (section == "3" or section == "4") and lines[i + 1] and lines[i + 1]:find("^|%s*:?%-%-%-") then
      local map = column_map(cells(l))
      i = i + 2
      -- the rows' owner: the public table, the arguments or answer, or the fields of the
      -- node a heading names (before the table, or as a row of its own: "| **suite** | | |")
      local function owner(h)
        if part == "public" then return public end
        local root = part == "response" and response or args
        if not h then return root end
        local n = find_node(root, h, true) or find_node(root, h, false)
          or find_node(root, h, true, "case") or find_node(root, h, true, "prefix")
          or find_node(root, h, true, "typename") or find_node(root, h, true, "squash")
        if n and n.name ~= h then
          warn(name, "table '" .. h .. "' taken as the fields of '" .. n.name .. "'")
        end
        if not n then
          orphans[#orphans + 1] = h
          return {}   -- its rows are dropped: no field to hang them on
        end
        n.children = n.children or {}
        return n.children
      end
      local target = owner(heading)
      while lines[i] and lines[i]:find("^|") do
        local c = cells(lines[i])
        local inline = c[1] and plain(c[1]):match("^([%a_][%w_]*)$")
        local rest = table.concat(c, "", 2):gsub("%s", "")
        if inline and rest == "" then
          target = owner(inline)
        elseif not map then      -- an empty header line, the real one as the first row
          map = column_map(c)
        elseif not column_map(c) then   -- (not a header row repeated inside the table)
          target[#target + 1] = read_row(map, c)
        end
        i = i + 1
      end
      heading = nil
    elseif (section == "5" or section == "6") and example_kind then
      local c = cells(l)
      local last
      for k = #c, 1, -1 do if trim(c[k]) ~= "" then last = c[k]; break end end
      if last and last:find("`") then
        local code = code_text(last)
        local key = example_kind
        if code ~= "" and not code:find("^<") and not e[key .. "_example"] then
          e[key .. "_example"] = code
        end
      end
      i = i + 1
    else
      i = i + 1
    end
  end
  e.public, e.args, e.response, e.orphans = public, args, response, orphans
  return e
end

-------------------------------------------------------------------------------------------
-- facts derived from the tables

local WRITE_VERBS = { "push", "upload", "create", "cancel", "update", "modify", "sync", "toException",
                      "Weighing", "weighing", "stop", "pending", "Add", "add", "set", "delete" }
local QUERY_VERBS = { "search", "query", "get", "Search", "Query", "calc", "pick", "Overview" }

local function method_kind(name, title)
  local last = name:match("([^%.]+)$")
  for _, v in ipairs(QUERY_VERBS) do
    if last:find("^" .. v) or (v:find("^%u") and last:find(v)) then return "query" end
  end
  for _, v in ipairs(WRITE_VERBS) do
    if last:find("^" .. v) or last:find(v) then return "write" end
  end
  if title:find("查询") or title:find("获取") then return "query" end
  return "write"
end

local UNIT = { ["天"] = 86400, ["小时"] = 3600, ["分钟"] = 60 }

local function window_of(e)
  local text = e.window_text
  if not text then return nil end
  local n, unit = text:match("(%d+)%s*(天)")
  if not n then n, unit = text:match("(%d+)%s*(小时)") end
  if not n then n, unit = text:match("(%d+)%s*(分钟)") end
  if not n then return nil end
  local from, to = text:match("([%a_\\]+)%s*[和与、]%s*([%a_\\]+)")
  if from then from, to = from:gsub("\\", ""), to:gsub("\\", "") end
  -- the filter object holding the window's fields, and its position among the arguments
  local function holder(f)
    for idx, a in ipairs(e.args) do
      if a.name == f then return idx, nil end
      for _, c in ipairs(a.children or {}) do
        if c.name == f then return idx, a end
      end
    end
  end
  if not from or not holder(from) then
    for _, pair in ipairs({ { "start_time", "end_time" }, { "start_date", "end_date" },
                            { "modified_from", "modified_to" }, { "start_modified", "end_modified" } }) do
      if holder(pair[1]) and holder(pair[2]) then from, to = pair[1], pair[2]; break end
    end
  end
  if not from or not holder(from) then
    warn(e.name, "window '" .. text .. "' names no fields found among the arguments")
    return nil
  end
  local pos = holder(from)
  local msg
  if e.error_example and e.error_example:find("过宽") then
    local ok, obj = pcall(json.decode, e.error_example)
    if ok and type(obj) == "table" then msg = obj.message end
    -- the example may be about another window ("不传商家编码…1小时"): only its own counts
    if type(msg) ~= "string" or not msg:find(n .. unit, 1, true) then msg = nil end
  end
  msg = msg or ("您的查询时间过宽,查询时间不能大于" .. n .. unit)
  return { from = from, to = to, arg = pos, max_seconds = tonumber(n) * UNIT[unit],
           text = plain(text), message = msg }
end

-- Whether the response tree holds a total_count (a paged answer says how many rows in all).
local function counts_total(fields)
  for _, f in ipairs(fields or {}) do
    if f.name == "total_count" or counts_total(f.children) then return true end
  end
  return false
end

local function paging_of(e)
  -- page_size among the public parameters and in the Pager's table: the limit from either
  local sizes, pager = {}, false
  for _, p in ipairs(e.public) do
    if p.name == "page_size" then sizes[#sizes + 1] = p end
  end
  for _, a in ipairs(e.args) do
    if a.type == "pager" then
      pager = true
      for _, c in ipairs(a.children or {}) do
        if c.name == "page_size" then sizes[#sizes + 1] = c end
      end
    end
  end
  if #sizes == 0 then return nil end
  -- many pages copy the public table with page_size in it ("分页查询必传": when paged);
  -- without a Pager argument a method is paged only if its answer counts a total
  -- (calcStock, batchCalcStock answer goods asked for by id, not pages)
  if not pager and not counts_total(e.response) then return nil end
  local max
  for _, size in ipairs(sizes) do
    local desc = size.description or ""
    max = max or tonumber(desc:match("不能超过%s*(%d+)") or desc:match("最大不?超?过?%s*(%d+)")
                         or desc:match("不超%s*(%d+)"))
  end
  local calc = false
  for _, p in ipairs(e.public) do if p.name == "calc_total" then calc = true end end
  return { max_page_size = max or 1000, max_page_size_on_page = max ~= nil, calc_total = calc }
end

-- Value lists a page prints incompletely, found by reading the page: kept as documentation,
-- not checked. "method path" -> why.
local OPEN_VALUES = {
  ["wms.stockout.Sales.queryWithDetail params.status_type"] =
    "the page's list lost the value 1 (its start_time row names status_type 1, 2, 3 and 0)",
  ["wms.stockout.Sales.queryHistoryWithDetail params.status_type"] =
    "the page's list lost the value 1 (its start_time row names status_type 1, 2, 3 and 0)",
}

-- 1, 2 and 4 without 3: flags that add up (modify_flag: 1新订单 2状态变化 4金额变化)
local function bit_mask(values)
  local has = {}
  for _, v in ipairs(values) do has[v.value] = true end
  return has[1] and has[2] and has[4] and not has[3]
end

local function open_values(e)
  local function walk(nodes, prefix)
    for _, n in ipairs(nodes) do
      local path = prefix and (prefix .. "." .. n.name) or n.name
      local why = OPEN_VALUES[e.name .. " " .. path]
      if not why and n.values and n.type == "int" and bit_mask(n.values) then
        why = "the values look like flags that add up: sums are not checked"
      end
      if why and n.values then
        n.values_open = true
        n.note = (n.note and n.note .. "; " or "") .. why
      end
      if n.children then walk(n.children, n.type == "list" and path .. "[]" or path) end
    end
  end
  walk(e.args)
end

-------------------------------------------------------------------------------------------
-- examples: parse; where sloppy, mend and say so; reconcile the tables with them

-- A line break the page put inside a string (a date split by <br>) becomes a space.
local function join_broken_strings(s)
  local out, in_str, esc = {}, false, false
  for ch in s:gmatch(".") do
    if in_str and ch == "\n" then ch = " " end
    if esc then esc = false
    elseif ch == "\\" and in_str then esc = true
    elseif ch == '"' then in_str = not in_str end
    out[#out + 1] = ch
  end
  return table.concat(out)
end

local function mend(text)
  local s = join_broken_strings(text)
  s = s:gsub("//[^\n\"]*\n", "\n")                 -- comments
  s = s:gsub(",(%s*[%]}])", "%1")                   -- trailing commas
  s = s:gsub("：", ":"):gsub("，", ","):gsub("“", '"'):gsub("”", '"')
  return s
end

local function parse_example(e, key)
  local text = e[key .. "_example"]
  if not text then return nil end
  local ok, v = pcall(json.decode, text)
  if ok then return text, v end
  local mended = mend(text)
  ok, v = pcall(json.decode, mended)
  if ok then
    e.example_notes[#e.example_notes + 1] = "the page's " .. key .. " example is not valid JSON as printed; mended: "
      .. "comments, trailing commas or full-width punctuation removed"
    return mended, v
  end
  warn(e.name, key .. " example does not parse: " .. tostring(v):sub(1, 120))
  e.example_notes[#e.example_notes + 1] = "the page's " .. key .. " example does not parse as JSON; left out"
  return nil
end

local function json_type(v)
  if v == json.null then return "null" end
  local t = type(v)
  if t == "number" then return math.type and math.type(v) == "integer" and "int" or (v == math.floor(v) and "int" or "decimal") end
  if t == "boolean" then return "bool" end
  if t == "string" then return "string" end
  if t == "table" then return (#v > 0 or getmetatable(v)) and "array" or "object" end
  return t
end

local function fits(node, v)
  local jt = json_type(v)
  local t = node.type
  if jt == "null" or t == nil then return true end
  if t == "string" then return jt == "string" end
  if t == "int" then return jt == "int" end
  if t == "decimal" then return jt == "int" or jt == "decimal" end
  if t == "bool" then return jt == "bool" end
  if t == "object" then return jt == "object" or (jt == "array" and #v == 0) end
  if t == "list" then return jt == "array" or (jt == "object" and next(v) == nil) end
  return true
end

local JT_TO = { string = "string", int = "int", decimal = "decimal", bool = "bool", array = "list", object = "object" }

-- Walk an example value against the nodes; where the example contradicts its own table,
-- follow the example and note it on the node.
local function reconcile(e, nodes, value, path, is_request)
  if type(value) ~= "table" or value == json.null then return end
  local byname = {}
  for _, n in ipairs(nodes) do byname[n.name] = n end
  for _, n in ipairs(nodes) do
    local v = value[n.name]
    local vt = v ~= nil and json_type(v)
    if n.children and n.type == "list" and vt == "object" and next(v) ~= nil then
      n.type, n.of = "object", nil
      n.note = (n.note and n.note .. "; " or "") .. "a list on the page, an object in its example"
    elseif n.children and n.type == "object" and vt == "array" and #v > 0 and type(v[1]) == "table" then
      n.type, n.of = "list", "object"
      n.note = (n.note and n.note .. "; " or "") .. "an object on the page, a list in its example"
    end
    if v == nil and n.required and is_request then
      n.required, n.required_on_page = false, true
      n.note = (n.note and n.note .. "; " or "") .. "required on the page, left out by the page's example"
    elseif v ~= nil then
      if not fits(n, v) then
        local jt = json_type(v)
        n.also = n.also or {}
        local extra = JT_TO[jt] or jt
        local dup = false
        for _, a in ipairs(n.also) do if a == extra then dup = true end end
        if not dup then
          n.also[#n.also + 1] = extra
          n.note = (n.note and n.note .. "; " or "") .. "the page's example sends " .. extra .. " (" .. (n.type or "?") .. " in its table)"
        end
      end
      if n.values and json_type(v) == "int" then
        local known = false
        for _, a in ipairs(n.values) do if a.value == v then known = true end end
        if not known then
          n.values_open = true
          n.note = (n.note and n.note .. "; " or "") .. "the page's example sends " .. tostring(v) .. ", not among its listed values"
        end
      end
      if n.length and type(v) == "string" and utf8.len(v) and utf8.len(v) > n.length then
        n.note = (n.note and n.note .. "; " or "") .. "the page's example is longer than its length " .. n.length
        n.length_on_page, n.length = n.length, nil
      end
      if n.children then
        if json_type(v) == "array" then
          for k, item in ipairs(v) do
            reconcile(e, n.children, item, path .. "." .. n.name .. "[" .. k .. "]", is_request)
          end
        else
          reconcile(e, n.children, v, path .. "." .. n.name, is_request)
        end
      end
    end
  end
  local _ = byname
end

local function reconcile_args(e, body)
  if type(body) ~= "table" or json_type(body) ~= "array" then
    if body ~= nil then warn(e.name, "request example is not an array") end
    return
  end
  local positional = {}
  for _, a in ipairs(e.args) do if a.type ~= "pager" then positional[#positional + 1] = a end end
  local wrapper = { children = positional }
  local obj = {}
  for k, n in ipairs(positional) do obj[n.name] = body[k] end
  reconcile(e, wrapper.children, obj, "", true)
  if #body > #positional then
    warn(e.name, "request example has " .. #body .. " arguments, the table " .. #positional)
  end
end

-- Fields required only when other keys are absent: a query's times that an order number
-- stands in for. The page says so on the times ("若无订单编号/原始单号/物流单号，则为必填",
-- "上同开始时间") or on the keys ("传入出库单号可以不传时间条件"). Such a field gets
-- `unless`: the keys (by name) any one of which makes it optional.
local function bare(title) return (title:gsub("编", ""):gsub("码", ""):gsub("号", "")) end

local function conditional_required(e)
  for _, a in ipairs(e.args) do
    local kids = a.type == "object" and a.children or {}
    local keys, seen, conditional = {}, {}, {}
    local function add(name)
      if not seen[name] then seen[name] = true; keys[#keys + 1] = name end
    end
    for _, c in ipairs(kids) do
      local d = c.description or ""
      if d:find("不传时间") or d:find("不传入时间") then add(c.name) end
      local phrase = d:match("若无(.-)则为?必填")
      if phrase then
        phrase = phrase:gsub("，$", ""):gsub(",$", "")
        conditional[c] = "named"
        -- the keys by their titles, give or take 编/码/号 (订单号: 订单编号; 生产单编码: 生产单号)
        local parts = {}
        for part in (phrase:gsub("或", "/"):gsub("、", "/")):gmatch("[^/]+") do parts[bare(part)] = true end
        for _, k in ipairs(kids) do
          if k ~= c and k.title and k.title ~= "" and (phrase:find(k.title, 1, true) or parts[bare(k.title)]) then
            add(k.name)
          end
        end
        -- else a key whose own description opens with the phrase: the page titles a field
        -- 入库单号 and describes it "出库单号，…" (StockinCollect.queryCostWithDetail)
        if #keys == 0 then
          for _, k in ipairs(kids) do
            local kd = k.description or ""
            if k ~= c and phrase ~= "" and kd:sub(1, #phrase) == phrase then add(k.name) end
          end
        end
      elseif d:find("上同开始时间") then
        conditional[c] = "as start"
      end
    end
    local w = e.window
    for _, c in ipairs(kids) do
      if c.required and (conditional[c] or (#keys > 0 and w and (c.name == w.from or c.name == w.to))) then
        if #keys == 0 and conditional[c] == "named" then
          warn(e.name, c.name .. ": required unless… names no field: " .. (c.description or ""))
        elseif #keys > 0 then
          c.unless = keys
          c.note = (c.note and c.note .. "; " or "") .. "required unless "
            .. (#keys == 1 and keys[1] or "one of " .. table.concat(keys, ", ")) .. " is given (the page's words)"
        end
      end
    end
  end
end

-- An example whose window is wider than the page's own limit: move its end in (in place);
-- returns the old window as text, or nil when it fits.
local function narrow_window(e, body)
  local w = e.window
  local k = 0
  local holder
  for i, a in ipairs(e.args) do
    if a.type ~= "pager" then k = k + 1 end
    if i == w.arg then holder = body[k] end
  end
  if type(holder) ~= "table" then return nil end
  local function secs(v)
    local y, mo, d, h, mi, se = tostring(v):match("^(%d+)-(%d+)-(%d+) (%d+):(%d+):(%d+)$")
    if not y then return nil end
    return os.time({ year = y, month = mo, day = d, hour = h, min = mi, sec = se, isdst = false })
  end
  local a, b = secs(holder[w.from]), secs(holder[w.to])
  if not a or not b or b - a <= w.max_seconds then return nil end
  local old = holder[w.from] .. " to " .. holder[w.to]
  holder[w.to] = os.date("%Y-%m-%d %H:%M:%S", a + w.max_seconds)
  return old
end

-------------------------------------------------------------------------------------------
-- guide pages

local function guide_tables(text)
  local tables, lines = {}, {}
  for l in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end
  local i, heading = 1, nil
  while i <= #lines do
    local l = lines[i]
    if l:find("^|") and lines[i + 1] and lines[i + 1]:find("^|%s*:?%-%-%-") then
      local t = { heading = heading, head = {}, rows = {} }
      for _, c in ipairs(cells(l)) do t.head[#t.head + 1] = plain(c) end
      i = i + 2
      while lines[i] and lines[i]:find("^|") do
        local r = {}
        for _, c in ipairs(cells(lines[i])) do r[#r + 1] = plain(c) end
        t.rows[#t.rows + 1] = r
        i = i + 1
      end
      tables[#tables + 1] = t
    else
      if trim(l) ~= "" then heading = plain(l) end
      i = i + 1
    end
  end
  return tables
end

-------------------------------------------------------------------------------------------
-- writing Lua data

local KEY_ORDER = { "name", "title", "category", "group", "kind", "description", "version", "deprecated",
  "incremental", "window_text", "notes", "url", "type", "of", "type_on_page", "length", "length_on_page",
  "required", "required_on_page", "unless", "also", "values", "values_open", "note", "children", "paging", "window",
  "args", "response", "examples", "value", "meaning", "from", "to", "arg", "max_seconds", "text",
  "message", "max_page_size", "max_page_size_on_page", "calc_total", "request", "error", "example_notes" }
local RANK = {}
for k, v in ipairs(KEY_ORDER) do RANK[v] = k end

local function is_ident(k) return type(k) == "string" and k:find("^[%a_][%w_]*$") end

local function ser(v, indent, out)
  local t = type(v)
  if t == "string" then out[#out + 1] = string.format("%q", v):gsub("\\\n", "\\n")
  elseif t == "number" or t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "table" then
    local flat = true
    for _, x in pairs(v) do if type(x) == "table" then flat = false end end
    if flat and #v == 0 and next(v) ~= nil then
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b) return (RANK[a] or 1000) < (RANK[b] or 1000) or
        ((RANK[a] or 1000) == (RANK[b] or 1000) and tostring(a) < tostring(b)) end)
      out[#out + 1] = "{"
      for n, k in ipairs(keys) do
        out[#out + 1] = (n > 1 and ", " or "") .. (is_ident(k) and k or "[" .. string.format("%q", k) .. "]") .. " = "
        ser(v[k], indent, out)
      end
      out[#out + 1] = "}"
    elseif #v > 0 or next(v) == nil then
      out[#out + 1] = "{"
      local simple = true
      for _, x in ipairs(v) do if type(x) == "table" then simple = false end end
      if simple then
        for k, x in ipairs(v) do
          if k > 1 then out[#out + 1] = ", " end
          ser(x, indent, out)
        end
        out[#out + 1] = "}"
      else
        for _, x in ipairs(v) do
          out[#out + 1] = "\n" .. indent .. "  "
          ser(x, indent .. "  ", out)
          out[#out + 1] = ","
        end
        out[#out + 1] = "\n" .. indent .. "}"
      end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, function(a, b)
        local ra, rb = RANK[a] or 1000, RANK[b] or 1000
        if ra ~= rb then return ra < rb end
        return tostring(a) < tostring(b)
      end)
      out[#out + 1] = "{"
      for _, k in ipairs(keys) do
        out[#out + 1] = "\n" .. indent .. "  " .. (is_ident(k) and k or "[" .. string.format("%q", k) .. "]") .. " = "
        ser(v[k], indent .. "  ", out)
        out[#out + 1] = ","
      end
      out[#out + 1] = "\n" .. indent .. "}"
    end
  end
end

local function write(path, header, value)
  local out = { header, "return " }
  ser(value, "", out)
  out[#out + 1] = "\n"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(out))
  f:close()
end

-------------------------------------------------------------------------------------------
-- main

local commit = trim(git("rev-parse HEAD"))
local files = {}
for f in git("ls-tree --name-only HEAD Firecrawl/"):gmatch("[^\n]+") do files[#files + 1] = f end
table.sort(files)
os.execute("mkdir -p " .. shell_quote(outdir .. "/methods"))
os.execute("rm -f " .. shell_quote(outdir) .. "/methods/*.lua")

local SOURCE = "-- Generated by tools/gen-catalogue.lua from cunsheng/wangdiantong-api-qjb@" .. commit .. "\n"
  .. "-- (the vendor's pages, open.wangdian.cn/qjb/open/apidoc). Facts only; do not edit by hand.\n"

local index, guide, addresses = {}, { source = commit }, { source = commit }

-- The guide pages: error codes, platform codes, logistics types, address codes. The signing
-- page is empty in this copy; its rule is written in doc/ and checked by the specs instead.
local function read_guide(which, text)
  local url = text:match('url:%s*"([^"]+)"')
  if which == "qjbguide_cwmsm" then
    guide.errors = { url = url, codes = {} }
    for _, t in ipairs(guide_tables(text)) do
      if t.head[1] == "错误码" then
        for _, r in ipairs(t.rows) do
          local code = tonumber(r[1])
          if code then guide.errors.codes[#guide.errors.codes + 1] = { code = code, message = r[2], remedy = r[3] } end
        end
      end
    end
  elseif which == "qjbguide_ptdmbb" then
    guide.platforms = { url = url, list = {} }
    for _, t in ipairs(guide_tables(text)) do
      if (t.head[1] or ""):find("platform_id", 1, true) then
        for _, r in ipairs(t.rows) do
          local id = tonumber(r[1])
          if id then
            local subs = {}
            for sid, sname in (r[3] or ""):gmatch("(%d+)%s*[:：]%s*([^；;]+)") do
              subs[#subs + 1] = { id = tonumber(sid), name = trim(sname) }
            end
            guide.platforms.list[#guide.platforms.list + 1] = { id = id, name = r[2], sub = subs }
          end
        end
      end
    end
  elseif which == "qjbguide_wlysb" then
    guide.logistics_types = { url = url, list = {} }
    for _, t in ipairs(guide_tables(text)) do
      if (t.head[1] or ""):find("logistics_type", 1, true) then
        for _, r in ipairs(t.rows) do
          local v = tonumber(r[1])
          if v then guide.logistics_types.list[#guide.logistics_types.list + 1] = { value = v, name = r[2] } end
        end
      end
    end
  elseif which == "qjbguide_ccdmb" then
    local code = text:gsub("`", "")
    addresses.url = url
    for map, body in code:gmatch('g_(%a+)_map"%][^(]-array%((.-)%);') do
      local list = {}
      for key, num in body:gmatch("'([^']+)'=>(%d+)") do
        local parent, name = key:match("^(%d+)%-(.+)$")
        list[#list + 1] = { tonumber(num), name or key, tonumber(parent) }
      end
      addresses[({ province = "provinces", city = "cities", district = "districts" })[map] or map] = list
    end
  elseif which == "qjbguide_signsf" then
    -- the rule as the vendor's SDKs apply it and its worked example confirms (checked by
    -- spec/sign_spec.lua against an independent MD5), written here in wdt's words
    guide.signing = { url = url, note = "the page is empty in the copy the catalogue was made from",
      rule = "every public parameter but sign (paging ones included), plus body = the exact body bytes; "
        .. "sorted by key, byte-wise; key then value, no separators; secret + that + secret; "
        .. "MD5, 32 lowercase hex digits (secret: the appsecret before its first ':', salt: after)" }
  end
end
local function strip(nodes)
  for _, n in ipairs(nodes) do
    if n.type == nil then n.type = "string"; n.note = (n.note and n.note .. "; " or "") .. "no type on the page: taken as string" end
    if n.description == "" then n.description = nil end
    if n.title == "" then n.title = nil end
    if n.type_on_page == "" then n.type_on_page = nil end
    if n.children then
      if #n.children == 0 then n.children = nil else strip(n.children) end
    end
    if n.type == "object" or (n.type == "list" and n.of == "object") then n.children = n.children or {} end
  end
end

for _, path in ipairs(files) do
  local base = path:match("^Firecrawl/(.*)%.md$")
  local text = git("show HEAD:" .. shell_quote(path))
  if base:find("^open%.wangdian%.cn") then
    read_guide(base:match("path=(.*)$"), text)
  else
    local e = parse_page(base, text)
    e.example_notes = {}
    if not e.title then warn(base, "no title") e.title = "" end
    for _, o in ipairs(e.orphans) do warn(base, "table '" .. o .. "' matches no field") end
    strip(e.args); strip(e.response)
    e.category = base:match("^([^%.]+)")
    e.group = base:match("^(.*)%.[^%.]+$")
    e.kind = method_kind(base, e.title)
    -- a write's page that lists page_size among the public parameters copied a query's table
    e.paging = e.kind == "query" and paging_of(e) or nil
    local req_text, req = parse_example(e, "request")
    local resp_text, resp = parse_example(e, "response")
    if type(resp) == "table" then reconcile(e, e.response, resp, "", false) end
    local err_text = parse_example(e, "error")
    e.window = window_of(e)
    if e.window_text and not e.window then
      e.notes[#e.notes + 1] = "时间跨度：" .. e.window_text
    end
    e.window_text = nil
    if req then reconcile_args(e, req) end
    conditional_required(e)
    open_values(e)
    e.examples = { request = req_text, response = resp_text, error = err_text }
    local narrowed = req and e.window and narrow_window(e, req)
    if narrowed then
      e.examples.request_in_window = json.encode(req)
      e.example_notes[#e.example_notes + 1] = "the page's example request asks for a window wider than its "
        .. "1.4 allows (" .. narrowed .. "); request_in_window is the same request with its end moved in"
    end
    if #e.example_notes > 0 then e.examples.notes = e.example_notes end
    if #e.notes == 0 then e.notes = nil end
    e.public, e.orphans, e.example_notes = nil, nil, nil
    e.request_example, e.response_example, e.error_example = nil, nil, nil
    if not e.examples.request then warn(base, "no request example") end
    write(outdir .. "/methods/" .. base:gsub("%.", "_") .. ".lua", SOURCE, e)
    index[base] = { title = e.title, category = e.category, kind = e.kind,
                    paged = e.paging ~= nil or nil, window = e.window ~= nil or nil }
  end
end
write(outdir .. "/index.lua", SOURCE .. "-- Every method: title, category, kind (query | write), paged, window.\n", index)
write(outdir .. "/guide.lua", SOURCE .. "-- The guide pages' facts: error codes, platform codes, logistics types.\n", guide)
write(outdir .. "/addresses.lua", SOURCE .. "-- The address codes (城市代码表): provinces, cities, districts as {code, name, parent code}.\n",
      addresses)
for _, w in ipairs(warnings) do io.stderr:write(w, "\n") end
io.stderr:write(#files, " pages read, ", #warnings, " warnings\n")
